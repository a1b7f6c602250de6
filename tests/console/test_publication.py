"""Item 8 of issue 17: before publishing, the console says what publishing will do (recipients
per channel, SMS segments per language and their cost, why a text is UCS-2), refuses a
template's unfilled blanks, and afterwards says which of publish, schedule or draft happened.

The audience figures are checked against what the fan-out really queues when the same text is
then published, so the preview cannot drift from the outbox."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient

from broadcast.console.pages.common import FLASH, read_flash
from broadcast.console.preview import cost
from broadcast.timeline.placeholders import unfilled
from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from channels.text import ucs2_culprits, without_culprits
from channels.webhook import WebhookChannel
from tests.support import ORIGIN, auth, csrf_of, log_in, new_incident, post_form, token_for

PRICE = Decimal("0.075")

# --- the rules on their own -----------------------------------------------------------------


def test_placeholders_are_the_bracketed_blanks_of_the_templates_each_once():
    bodies = {
        "nl": "De [weg] is dicht tussen [van] en [tot]. Bel [telefoonnummer]. [weg]!",
        "en": "Call [phone number]. Not a blank: [a] [b c d e f] [] [5 €]",
    }
    assert unfilled(bodies) == ["weg", "van", "tot", "telefoonnummer", "phone number", "a"]
    assert unfilled({"nl": "Zandzakken bij de brandweer, [OEFENING] staat er niet in."}) == [
        "OEFENING"
    ]
    assert unfilled({"nl": "Geen open plekken (meer)."}) == []


def test_the_characters_that_force_ucs2_are_named_with_a_stand_in():
    text = "Geïnformeerd: ‘kom’ – € 5 … ç 😀 é ü ł"
    found = {c.char: (c.replacement, c.automatic) for c in ucs2_culprits(text)}
    # € is in GSM-7's extension table and é, ü in its basic set: they never force UCS-2.
    assert "€" not in found and "é" not in found and "ü" not in found
    assert found["ï"] == ("i", False) and found["ç"] == ("c", False)
    assert found["’"] == ("'", True) and found["–"] == ("-", True) and found["…"] == ("...", True)
    assert found["😀"] == (None, False) and found["ł"] == (None, False)
    assert without_culprits(text) == "Geinformeerd: 'kom' - € 5 ... c 😀 é ü ł"


def test_cost_is_price_times_segments_times_recipients_rounded_to_the_cent():
    assert cost(PRICE, 2, 1201) == "180.15"
    assert cost(None, 2, 1201) is None
    assert cost(Decimal("0.0749"), 1, 3) == "0.22"
    assert cost(PRICE, 1, 3) == "0.23"  # half a cent rounds up, as on an invoice


# --- the compose form over HTTP -------------------------------------------------------------


@pytest.fixture
def sms_client(app_factory, settings, twilio):
    from tests.support import sms_config

    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, SmsChannel],
        channels=settings.channels | {"sms": sms_config(twilio)},
        sms_price_per_segment=PRICE,
        dispatch=False,  # only what is queued is counted here; nothing needs to go out
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def officer(sms_client):
    token = token_for(sms_client.app, "officer", name="lotte")
    assert log_in(sms_client, "lotte").status_code == 303
    return token


def subscribe(client, token, address, areas, **fields):
    body = {"channel": "sms", "address": address, "areas": areas} | fields
    response = client.post("/api/v1/subscribers", json=body, headers=auth(token))
    assert response.status_code == 201, response.text


def preview(client, incident, **fields):
    data = {"incident_id": str(incident["id"]), "severity": "warning"} | fields
    csrf = csrf_of(client)
    response = client.post("/console/preview", data=data, headers=ORIGIN | {"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_preview_counts_the_recipients_the_fan_out_then_queues(sms_client, officer):
    client = sms_client
    subscribe(client, officer, "+31612345001", ["mook"])
    subscribe(client, officer, "+31612345002", ["mook"], language="en")
    subscribe(client, officer, "+31612345003", [])  # the whole municipality
    subscribe(client, officer, "+31612345004", ["molenhoek"])  # another village
    subscribe(client, officer, "+31612345005", ["mook"], min_severity="emergency")
    incident = new_incident(client, officer, areas=["mook"])
    text = "Het water stijgt. Zandzakken bij de brandweer."

    shown = preview(client, incident, body_nl=text, body_en="The water is rising.")
    audience = {a["channel"]: a for a in shown["audience"]}
    assert audience["sms"]["recipients"] == 3 and audience["sms"]["active"]
    assert audience["platform"] == {
        "channel": "platform",
        "active": True,
        "recipients": 1,  # the public pages
        "subscribers": 0,
        "targets": 1,
    }
    sms = {s["language"]: s for s in shown["sms"]}
    assert (sms["nl"]["recipients"], sms["en"]["recipients"]) == (2, 1)
    assert sms["nl"]["segments"] == 1 and sms["nl"]["encoding"] == "GSM-7"
    assert shown["cost"] == "0.23"  # 3 recipients × 1 segment × € 0.075 = 0.225, rounded up
    assert shown["price_per_segment"] == "0.075"

    # Ticking Molenhoek as well reaches its subscriber too.
    wider = preview(client, incident, body_nl=text, areas=["mook", "molenhoek"])
    assert {a["channel"]: a["recipients"] for a in wider["audience"]}["sms"] == 4

    published = client.post(
        f"/api/v1/incidents/{incident['id']}/updates",
        json={"body": {"nl": text, "en": "The water is rising."}, "severity": "warning"},
        headers=auth(officer),
    ).json()
    queued = client.get(f"/api/v1/updates/{published['id']}/deliveries", headers=auth(officer))
    by_channel = {channel: sum(states.values()) for channel, states in queued.json().items()}
    assert by_channel == {"sms": 3, "platform": 1}


def test_a_ucs2_character_is_named_and_the_segments_with_its_stand_in_shown(sms_client, officer):
    incident = new_incident(sms_client, officer)
    text = "Bewoners worden geïnformeerd over de dijk. " * 3  # 129 characters: 1 GSM-7 segment
    shown = preview(sms_client, incident, body_nl=text.strip())
    nl = next(s for s in shown["sms"] if s["language"] == "nl")
    assert [(c["char"], c["replacement"], c["automatic"]) for c in nl["culprits"]] == [
        ("ï", "i", False)
    ]
    assert (nl["encoding"], nl["segments"]) == ("UCS-2", 3)
    assert (nl["encoding_replaced"], nl["segments_replaced"]) == ("GSM-7", 1)
    assert nl["cost"] == "0.00" and shown["placeholders"] == []
    assert preview(sms_client, incident, body_nl="Bel [nummer].")["placeholders"] == ["nummer"]

    # Curly quotes are replaced by the SMS adapter itself: named, but the SMS stays GSM-7.
    typographic = preview(sms_client, incident, body_nl="Ga ‘nu’ naar huis – het water stijgt…")
    nl = next(s for s in typographic["sms"] if s["language"] == "nl")
    assert nl["encoding"] == "GSM-7" and {c["automatic"] for c in nl["culprits"]} == {True}


def test_no_price_no_cost(app_factory, settings, twilio):
    from tests.support import sms_config

    app = app_factory(
        channel_classes=[PlatformChannel, SmsChannel],
        channels=settings.channels | {"sms": sms_config(twilio)},
        dispatch=False,
    )
    with TestClient(app) as client:
        token = token_for(client.app, "officer", name="lotte")
        assert log_in(client, "lotte").status_code == 303
        shown = preview(client, new_incident(client, token), body_nl="Het water stijgt.")
    assert shown["cost"] is None and shown["price_per_segment"] is None
    assert all(s["cost"] is None for s in shown["sms"])


def test_volunteers_see_the_preview_but_no_audience_or_cost(sms_client, officer):
    incident = new_incident(sms_client, officer)
    token_for(sms_client.app, "volunteer", name="anna")
    sms_client.cookies.clear()
    assert log_in(sms_client, "anna").status_code == 303
    shown = preview(sms_client, incident, body_nl="Het water stijgt.")
    assert shown["channels"] and "audience" not in shown and "cost" not in shown


# --- refusing blanks, and saying what happened --------------------------------------------------


def flash_of(response) -> str:
    note = read_flash(response.cookies.get(FLASH))
    assert note is not None, response.headers
    return note["message"] % note["values"] if note["values"] else note["message"]


def test_a_text_with_blanks_is_refused_and_everything_typed_is_kept(sms_client, officer):
    incident = new_incident(sms_client, officer)
    csrf = csrf_of(sms_client)
    typed = {
        "body_nl": "De [weg] is dicht tussen Mook en [tot].",
        "body_en": "The [road] is closed.",
        "severity": "advisory",
        "areas": ["molenhoek"],
        "when": "later",
        "publish_at": "2030-05-01T14:30",
        "next_update": "16:00",
    }
    refused = post_form(
        sms_client, f"/console/incidents/{incident['id']}/updates", typed, csrf=csrf
    )
    assert refused.status_code == 422
    page = unescape(refused.text)
    assert (
        "Niet gepubliceerd: vul eerst de open plekken van het sjabloon in: [weg], [tot], [road]. "
        "Uw tekst staat er nog." in page
    )
    assert "De [weg] is dicht tussen Mook en [tot].</textarea>" in page
    assert "The [road] is closed.</textarea>" in page
    assert re.search(r'value="molenhoek"[^>]* checked', refused.text)
    assert re.search(r'value="later" checked', refused.text)
    assert 'value="2030-05-01T14:30"' in refused.text and 'value="16:00"' in refused.text
    assert re.search(r'<option value="advisory" selected', refused.text)
    detail = sms_client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    assert detail["updates"] == []  # nothing stored, nothing scheduled

    # A draft may keep its blanks; approving it may not.
    draft = post_form(
        sms_client,
        f"/console/incidents/{incident['id']}/updates",
        typed | {"when": "draft"},
        csrf=csrf,
    )
    assert draft.status_code == 303 and flash_of(draft) == "Draft saved."
    (stored,) = sms_client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()[
        "updates"
    ]
    assert stored["state"] == "draft"
    approve = sms_client.post(f"/api/v1/updates/{stored['id']}/approve", headers=auth(officer))
    assert approve.status_code == 422
    assert approve.json()["placeholders"] == ["weg", "tot", "road"]


def test_the_api_refuses_blanks_with_their_names(sms_client, officer):
    incident = new_incident(sms_client, officer)
    for extra in ({}, {"publish_at": "2030-05-01T14:30:00+02:00"}):
        response = sms_client.post(
            f"/api/v1/incidents/{incident['id']}/updates",
            json={"body": {"nl": "Opvang is in [locatie]. Bel [telefoonnummer]."}} | extra,
            headers=auth(officer),
        )
        assert response.status_code == 422
        assert response.json() == {
            "detail": "fill in the template's blanks first: [locatie], [telefoonnummer]",
            "placeholders": ["locatie", "telefoonnummer"],
        }
    published = sms_client.post(
        f"/api/v1/incidents/{incident['id']}/updates",
        json={"body": "Opvang is in de sporthal."},
        headers=auth(officer),
    ).json()
    correction = sms_client.post(
        f"/api/v1/updates/{published['id']}/correct",
        json={"body": "Opvang is in [locatie]."},
        headers=auth(officer),
    )
    assert correction.status_code == 422 and correction.json()["placeholders"] == ["locatie"]


def test_the_message_says_published_scheduled_or_draft(sms_client, officer):
    incident = new_incident(sms_client, officer)
    csrf = csrf_of(sms_client)
    path = f"/console/incidents/{incident['id']}/updates"
    now = post_form(sms_client, path, {"body_nl": "Het water stijgt."}, csrf=csrf)
    assert flash_of(now) == "Published."
    later = {"body_nl": "Morgen meer.", "when": "later", "publish_at": "2030-05-01T14:30"}
    assert flash_of(post_form(sms_client, path, later, csrf=csrf)) == "Scheduled for 01-05 14:30."
    draft = {"body_nl": "Nog niet.", "when": "draft"}
    assert flash_of(post_form(sms_client, path, draft, csrf=csrf)) == "Draft saved."
    # In Dutch on the page the redirect leads to.
    shown = post_form(sms_client, path, {"body_nl": "Nog een bericht."}, csrf=csrf)
    page = sms_client.get(shown.headers["location"]).text
    assert 'role="status">Gepubliceerd.</p>' in page
