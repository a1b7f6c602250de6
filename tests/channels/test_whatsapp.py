"""WhatsApp Content templates: broadcasts go as approved templates (residents may not have
written in 24 hours), a private answer goes free-form first and, when WhatsApp refuses it
outside the window (63016), again as a template; against the Twilio stand-in over real HTTP."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from twilio.base.exceptions import TwilioRestException

from channels.base import ChannelContext, Media, Target, UpdateView
from channels.errors import PermanentFailure, RetryLater
from channels.platform import PlatformChannel
from channels.sms import WhatsAppChannel
from channels.sms.channel import TEMPLATE_TEXT_MAX
from tests.fakes.twilio import post_inbound_sms
from tests.support import (
    NUMBER,
    PROXIED,
    LiveApp,
    auth,
    counts,
    new_incident,
    post_update,
    sms_config,
    subscribe_number,
    wait_for,
)

UPDATE_SID = "HX" + "a" * 32
EMERGENCY_SID = "HX" + "b" * 32
ANSWER_SID = "HX" + "c" * 32
PHOTO_SID = "HX" + "d" * 32
TEMPLATES = {"update": UPDATE_SID, "emergency": EMERGENCY_SID, "answer": ANSWER_SID}
# The approved texts, as registered with WhatsApp (the stand-in renders them).
TEXTS = {
    UPDATE_SID: "{{1}}\n\n{{2}}\n\nMeer: {{3}}",
    EMERGENCY_SID: "GEVAAR. {{1}}\n\n{{2}}\n\nMeer: {{3}}",
    ANSWER_SID: "Antwoord van de gemeente op uw vraag:\n\n{{2}}\n\n{{3}}",
    PHOTO_SID: "{{1}}\n\n{{2}}\n\nMeer: {{3}}",
}
RESIDENT = "whatsapp:" + NUMBER


def view(body: str = "Zandzakken bij de brandweer.", **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "warning", "body": {"nl": body}}
    return UpdateView(**fields | {"url": f"{PROXIED}/u/7", "incident_title": "Hoogwater"} | changes)


def channel(twilio, templates: dict | str | None = None) -> WhatsAppChannel:
    config = sms_config(twilio, whatsapp_templates=TEMPLATES if templates is None else templates)
    settings = WhatsAppChannel.Settings.model_validate(config)
    return WhatsAppChannel(settings, ChannelContext(public_url=PROXIED))


def content(whatsapp: WhatsAppChannel, update: UpdateView, attempt: int = 1) -> dict:
    target = Target(RESIDENT, delivery_id=1, attempt=attempt)
    return whatsapp.content(whatsapp.render(update, "nl"), target)


# --- settings ---------------------------------------------------------------------------------


def test_templates_come_from_a_json_setting(twilio):
    whatsapp = channel(twilio, json.dumps(TEMPLATES))
    assert whatsapp.templates == TEMPLATES
    assert channel(twilio, "").templates == {}


@pytest.mark.parametrize(
    ("templates", "says"),
    [
        ("{not json", "not a JSON object"),
        ({"update": UPDATE_SID, "evacuation": EMERGENCY_SID}, "unknown template purpose"),
        ({"update": "HX123"}, "HX and 32 hex digits"),
        ({"emergency": EMERGENCY_SID}, 'need an "update" one'),
    ],
)
def test_wrong_template_settings_are_refused_with_a_reason(twilio, templates, says):
    with pytest.raises(ValidationError, match=says):
        channel(twilio, templates)


# --- which content a message becomes ----------------------------------------------------------


def test_a_broadcast_goes_as_the_template_of_its_kind_or_severity(twilio):
    whatsapp = channel(twilio)
    sent = content(whatsapp, view("Het water stijgt.\n\nBlijf   weg van de dijk."))
    assert sent["content_sid"] == UPDATE_SID and "body" not in sent
    variables = json.loads(sent["content_variables"])
    assert variables["1"] == "Waarschuwing – Hoogwater"
    assert variables["2"] == "Het water stijgt. Blijf weg van de dijk."  # one line
    assert variables["3"] == f"{PROXIED}/u/7"
    assert content(whatsapp, view(severity="emergency"))["content_sid"] == EMERGENCY_SID
    # A correction of an emergency has no template of its own: its severity's.
    correction = view(kind="correction", severity="emergency", supersedes=6)
    assert content(whatsapp, correction)["content_sid"] == EMERGENCY_SID


def test_a_long_text_is_cut_to_leave_room_for_the_template(twilio):
    sent = content(channel(twilio), view("Water " * 400))
    text = json.loads(sent["content_variables"])["2"]
    assert len(text) <= TEMPLATE_TEXT_MAX and text.endswith("…")


def test_a_photo_goes_as_a_media_template_where_there_is_one(twilio):
    photo = Media(f"{PROXIED}/media/3/dijk.jpg", "image/jpeg", "De dijk bij Mook")
    with_photo = view(media=(photo,))
    assert "4" not in json.loads(content(channel(twilio), with_photo)["content_variables"])
    whatsapp = channel(twilio, TEMPLATES | {"update:photo": PHOTO_SID})
    sent = content(whatsapp, with_photo)
    assert sent["content_sid"] == PHOTO_SID
    assert json.loads(sent["content_variables"])["4"] == "media/3/dijk.jpg"
    assert content(whatsapp, view())["content_sid"] == UPDATE_SID  # no photo: no media header


def test_a_private_answer_goes_free_form_first_and_as_a_template_again(twilio):
    whatsapp = channel(twilio)
    answer = view("Ja, bij de sporthal.", kind="answer", severity="info")
    assert content(whatsapp, answer) == {"body": whatsapp.render(answer, "nl").text}
    assert content(whatsapp, answer, attempt=2)["content_sid"] == ANSWER_SID


def test_without_templates_everything_is_free_form_and_63016_is_final(twilio):
    whatsapp = channel(twilio, {})
    assert "body" in content(whatsapp, view())
    assert whatsapp.callback_retry_after(63016, template=False) is None
    templated = channel(twilio)
    assert templated.callback_retry_after(63016, template=False) == 0.0
    assert templated.callback_retry_after(63016, template=True) is None  # nothing else to try


def test_an_immediate_63016_is_retried_only_when_a_template_can_follow(twilio):
    refusal = TwilioRestException(400, "uri", "outside the window", code=63016)
    target = Target(RESIDENT, delivery_id=1)
    assert isinstance(channel(twilio).classify(refusal, target, template=False), RetryLater)
    assert isinstance(channel(twilio).classify(refusal, target, template=True), PermanentFailure)
    assert isinstance(
        channel(twilio, {}).classify(refusal, target, template=False), PermanentFailure
    )


# --- whole flows: dispatcher, stand-in, signed status callbacks --------------------------------


@pytest.fixture
def outside_window(app_factory, twilio):
    """The app on a real port; WhatsApp's window is enforced and nobody has written lately."""
    twilio.state.content_templates |= TEXTS
    twilio.state.whatsapp_window = True
    twilio.state.callback_delay = 0.3
    started: list[LiveApp] = []

    def start(templates: dict) -> LiveApp:
        def build(public_url: str):
            config = sms_config(twilio, whatsapp_templates=templates)
            return app_factory(
                public_url=public_url,
                channel_classes=[PlatformChannel, WhatsAppChannel],
                channels={"whatsapp": config},
            )

        app = LiveApp(build).__enter__()
        started.append(app)
        return app

    yield start
    for app in started:
        app.__exit__(None, None, None)


def whatsapp_requests(twilio) -> list[dict]:
    return [r for r in twilio.state.requests if str(r.get("To", "")).startswith("whatsapp:")]


def test_a_broadcast_reaches_a_resident_outside_the_window(outside_window, twilio):
    app = outside_window(TEMPLATES)
    subscribe_number(app, NUMBER, ["mook"], channel="whatsapp")
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"], body="Zandzakken bij de brandweer.")
    wait_for(lambda: counts(app, update).get("whatsapp") == {"delivered": 1}, timeout=60)
    [request] = whatsapp_requests(twilio)
    assert request["ContentSid"] == UPDATE_SID and "Body" not in request
    [text] = twilio.state.bodies_to(RESIDENT)
    assert text.startswith("Waarschuwing – Hoogwater Maas\n\nZandzakken bij de brandweer.")
    assert f"/u/{update['id']}" in text


def test_an_answer_refused_outside_the_window_is_sent_again_as_a_template(outside_window, twilio):
    app = outside_window(TEMPLATES)
    asked = post_inbound_sms(
        f"{app.url}/webhooks/twilio/whatsapp", RESIDENT, "Waar zijn zandzakken?", twilio.auth_token
    )
    assert asked.status_code == 200
    [question] = app.http.get("/api/v1/questions", headers=auth(app.officer)).json()
    answer = app.http.post(
        f"/api/v1/questions/{question['id']}/answer",
        json={"body": "Bij de sporthal, tot 22:00."},
        headers=auth(app.officer),
    )
    assert answer.status_code == 201, answer.text
    wait_for(lambda: counts(app, answer.json()).get("whatsapp") == {"delivered": 1}, timeout=60)
    first, second = whatsapp_requests(twilio)  # exactly two: no loop, nothing lost
    assert "Body" in first and "ContentSid" not in first
    assert second["ContentSid"] == ANSWER_SID
    failed = [c for c in twilio.state.callbacks if c.params.get("ErrorCode") == "63016"]
    assert len(failed) == 1 and failed[0].status_code == 204
    assert "Bij de sporthal, tot 22:00." in twilio.state.bodies_to(RESIDENT)[-1]


def test_without_templates_a_refused_broadcast_fails_once_with_the_reason(outside_window, twilio):
    app = outside_window({})
    subscribe_number(app, NUMBER, ["mook"], channel="whatsapp")
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"])
    wait_for(lambda: counts(app, update).get("whatsapp") == {"failed": 1}, timeout=60)
    assert len(whatsapp_requests(twilio)) == 1


def test_a_template_too_long_for_whatsapp_fails_and_is_not_resent(outside_window, twilio):
    long_sid = "HX" + "e" * 32
    twilio.state.content_templates[long_sid] = (
        "x" * 1020 + " {{2}}"
    )  # 1,024 characters passed with the text
    app = outside_window({"update": long_sid})
    subscribe_number(app, NUMBER, ["mook"], channel="whatsapp")
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"], body="Het water stijgt snel.")
    wait_for(lambda: counts(app, update).get("whatsapp") == {"failed": 1}, timeout=60)
    assert len(whatsapp_requests(twilio)) == 1
