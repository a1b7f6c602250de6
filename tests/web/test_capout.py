"""CAP output: every published update as a CAP 1.2 alert that the official schema accepts, with
corrections and retractions referencing the original, and an Atom index our own reader reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.feeds.parse.cap import parse_cap
from tests.feeds.conftest import feed_settings
from tests.support import auth

XSD = Path(__file__).resolve().parents[1] / "fixtures" / "cap" / "CAP-v1.2.xsd"
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture
def client(settings):
    from broadcast.app import create_app
    from channels.platform import PlatformChannel

    app = create_app(
        feed_settings(settings, public_url="https://crisis.mookenmiddelaar.nl"),
        schedule=False,
        channel_classes=[PlatformChannel],
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def officer(client):
    with client.app.state.db.session_scope() as session:
        return auth(add_user(session, name="olga", role=Role.officer)[1])


def incident(client, officer, **fields):
    body = {"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook", "plasmolen"]}
    response = client.post("/api/v1/incidents", json=body | fields, headers=officer)
    assert response.status_code == 201
    return response.json()


def update(client, officer, incident_id, **fields):
    body = {"body": {"nl": "Zandzakken bij de kerk.", "en": "Sandbags at the church."}} | fields
    response = client.post(f"/api/v1/incidents/{incident_id}/updates", json=body, headers=officer)
    assert response.status_code == 201, response.text
    return response.json()


def cap_of(client, update_id) -> etree._Element:
    response = client.get(f"/updates/{update_id}.cap")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/cap+xml")
    document = etree.fromstring(response.content)
    SCHEMA.assertValid(document)  # the official CAP 1.2 schema
    return document


def text(document, path):
    return document.findtext(path, namespaces=NS)


def test_a_published_update_is_a_valid_cap_alert_with_both_languages(client, officer):
    item = incident(client, officer)
    posted = update(client, officer, item["id"], severity="emergency")

    alert = cap_of(client, posted["id"])

    assert text(alert, "cap:identifier") == f"crisis.mookenmiddelaar.nl-update-{posted['id']}"
    assert text(alert, "cap:sender") == "crisis.mookenmiddelaar.nl"
    assert text(alert, "cap:sent")[-6:] in ("+01:00", "+02:00")  # Europe/Amsterdam
    assert (text(alert, "cap:status"), text(alert, "cap:msgType"), text(alert, "cap:scope")) == (
        "Actual",
        "Alert",
        "Public",
    )
    infos = alert.findall("cap:info", NS)
    assert [text(i, "cap:language") for i in infos] == ["nl-NL", "en-US"]
    nl, en = infos
    assert (text(nl, "cap:category"), text(nl, "cap:event")) == ("Safety", "Hoogwater Maas")
    assert (text(nl, "cap:urgency"), text(nl, "cap:severity"), text(nl, "cap:certainty")) == (
        "Immediate",
        "Extreme",
        "Observed",
    )
    assert text(nl, "cap:headline") == "Hoogwater Maas"
    assert text(nl, "cap:description") == "Zandzakken bij de kerk."
    assert text(en, "cap:description") == "Sandbags at the church."
    assert text(nl, "cap:web") == (
        f"https://crisis.mookenmiddelaar.nl/incidents/{item['slug']}#update-{posted['id']}"
    )
    assert text(nl, "cap:area/cap:areaDesc") == "Mook, Plasmolen"
    assert [v.text for v in nl.findall("cap:area/cap:geocode/cap:value", NS)] == ["6585", "6586"]


def test_a_correction_is_an_update_and_a_retraction_a_cancel_both_referencing_the_original(
    client, officer
):
    item = incident(client, officer)
    wrong = update(client, officer, item["id"], body="Het water staat op 3 meter.")
    original = cap_of(client, wrong["id"])
    correction = client.post(
        f"/api/v1/updates/{wrong['id']}/correct",
        headers=officer,
        json={"body": "Het water staat op 2 meter."},
    ).json()
    rumour = update(client, officer, item["id"], body="De Maasbrug is dicht.")
    notice = client.post(
        f"/api/v1/updates/{rumour['id']}/retract",
        headers=officer,
        json={"reason": "De brug is gewoon open."},
    ).json()

    corrected = cap_of(client, correction["id"])
    reference = ",".join(
        [text(original, "cap:sender"), text(original, "cap:identifier"), text(original, "cap:sent")]
    )
    assert text(corrected, "cap:msgType") == "Update"
    assert text(corrected, "cap:references") == reference
    assert text(corrected, "cap:info/cap:headline") == "Correctie: Hoogwater Maas"

    cancel = cap_of(client, notice["id"])
    assert text(cancel, "cap:msgType") == "Cancel"
    assert text(cancel, "cap:references").split(",")[1].endswith(f"-update-{rumour['id']}")
    assert text(cancel, "cap:note") == "De brug is gewoon open."
    assert text(cancel, "cap:info/cap:urgency") == "Past"
    assert text(cap_of(client, rumour["id"]), "cap:msgType") == "Alert"  # as it was sent


def test_an_exercise_is_status_exercise_and_the_all_clear_references_what_was_in_force(
    client, officer
):
    item = incident(client, officer, exercise=True)
    first = update(client, officer, item["id"])
    clear = client.post(
        f"/api/v1/incidents/{item['id']}/resolve", headers=officer, json={"body": "Alles veilig."}
    ).json()
    assert text(cap_of(client, first["id"]), "cap:status") == "Exercise"
    all_clear = cap_of(client, clear["id"])
    assert text(all_clear, "cap:msgType") == "Update"
    assert text(all_clear, "cap:info/cap:responseType") == "AllClear"
    assert f"-update-{first['id']}," in text(all_clear, "cap:references")


def test_nothing_unpublished_is_a_cap_alert(client, officer):
    item = incident(client, officer)
    draft = update(client, officer, item["id"], draft=True)
    assert client.get(f"/updates/{draft['id']}.cap").status_code == 404
    assert client.get("/updates/999.cap").status_code == 404


def test_the_cap_index_lists_the_alerts_in_force_and_our_own_reader_reads_it(client, officer):
    item = incident(client, officer)
    kept = update(client, officer, item["id"])
    wrong = update(client, officer, item["id"], body="Verkeerd.")
    correction = client.post(
        f"/api/v1/updates/{wrong['id']}/correct", headers=officer, json={"body": "Goed."}
    ).json()
    update(client, officer, item["id"], draft=True)

    response = client.get("/cap.atom")

    assert response.headers["content-type"].startswith("application/atom+xml")
    alerts = parse_cap(response.content).alerts
    identifiers = {a.identifier: a for a in alerts}
    prefix = "crisis.mookenmiddelaar.nl-update-"
    assert set(identifiers) == {f"{prefix}{kept['id']}", f"{prefix}{correction['id']}"}
    fixed = identifiers[f"{prefix}{correction['id']}"]
    assert (fixed.msg_type, fixed.references, fixed.status) == (
        "Update",
        [f"{prefix}{wrong['id']}"],
        "Actual",
    )
    assert fixed.link == f"https://crisis.mookenmiddelaar.nl/updates/{correction['id']}.cap"
    assert fixed.areas == ["Mook, Plasmolen"]


def test_the_cap_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/updates/{update_id}.cap"]["get"]["summary"].startswith("A published update")
    assert "/cap.atom" in paths
