"""SMS and WhatsApp through the real twilio client against the Twilio stand-in: settings,
numbers, segments, the error table, signed webhooks, and whole flows over real HTTP."""

from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from twilio.request_validator import RequestValidator

from broadcast.db import Database
from broadcast.delivery.adapters import configure
from broadcast.delivery.models import Delivery, DirectMessage
from broadcast.inbound import service as inbound
from broadcast.inbound.models import InboundMessage
from broadcast.settings import Settings
from broadcast.subscribers.models import Subscriber
from broadcast.subscribers.service import area_codes
from channels.base import ChannelContext, Target, UpdateView
from channels.errors import NotConfigured, PermanentFailure, RecipientGone, RetryLater
from channels.platform import PlatformChannel
from channels.sms import SmsChannel, TwilioSettings, WhatsAppChannel
from channels.text import sms_info
from tests.conftest import FIXTURES
from tests.fakes.server import HeldFromFirstLook
from tests.fakes.twilio import FakeTwilio, post_inbound_sms, signed_inbound_sms
from tests.support import (
    NUMBER,
    PROXIED,
    SENDER,
    LiveApp,
    auth,
    counts,
    new_incident,
    post_signed,
    post_update,
    reply,
    sms_channel,
    sms_config,
    subscribe_number,
    token_for,
    wait_for,
)


def view(body: str, **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "info", "body": {"nl": body}}
    return UpdateView(**fields | {"url": f"{PROXIED}/u/7", "incident_title": "Hoogwater"} | changes)


# --- settings and numbers ---------------------------------------------------------------------


def test_contract_environment_variables_configure_the_channels(monkeypatch):
    for name, value in {
        "ACCOUNT_SID": "AC123",
        "AUTH_TOKEN": "secret",
        "FROM": SENDER,
        "WHATSAPP_FROM": "+3197010000001",
        "ALLOWED_COUNTRIES": "31,+32",
        "API_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(f"BROADCAST_TWILIO_{name}", value)
    context = ChannelContext(public_url=PROXIED)
    sms = configure(SmsChannel, Settings(), context)
    assert sms.sender == {"from_": SENDER} and sms.allowed_countries == {"31", "32"}
    assert sms.settings.api_url == "http://127.0.0.1:9"
    whatsapp = configure(WhatsAppChannel, Settings(), context)
    assert whatsapp.sender == {"from_": "whatsapp:+3197010000001"}
    monkeypatch.setenv("BROADCAST_TWILIO_MESSAGING_SERVICE_SID", "MG123")
    assert configure(SmsChannel, Settings(), context).sender == {"messaging_service_sid": "MG123"}


@pytest.mark.parametrize(
    ("values", "cls", "reason"),
    [
        ({"from": SENDER}, SmsChannel, "ACCOUNT_SID and BROADCAST_TWILIO_AUTH_TOKEN"),
        ({"account_sid": "AC1", "auth_token": "t"}, SmsChannel, "BROADCAST_TWILIO_FROM nor"),
        ({"account_sid": "AC1", "auth_token": "t", "from": SENDER}, WhatsAppChannel, "WHATSAPP"),
    ],
)
def test_missing_credentials_keep_the_channel_off(values, cls, reason):
    with pytest.raises(NotConfigured, match=reason):
        cls(cls.Settings.model_validate(values), ChannelContext(public_url=PROXIED))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 12345678", NUMBER),
        ("+31 6 1234 5678", NUMBER),
        ("0031612345678", NUMBER),
        ("+31 (0)6-12345678", NUMBER),
        ("020 123 4567", ValueError("a landline")),
        ("0800 1234", ValueError("toll-free")),
        ("0900 1234567", ValueError("premium-rate")),
        ("+32 470 12 34 56", ValueError("country \\+32 are not accepted")),
        ("+31 6 1234", ValueError("not a valid phone number")),
        ("bel mij", ValueError("not a phone number")),
    ],
)
def test_numbers_are_normalised_to_e164(typed, expected):
    channel = SmsChannel(
        TwilioSettings.model_validate({"account_sid": "AC1", "auth_token": "t", "from": SENDER}),
        ChannelContext(public_url=PROXIED),
    )
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError, match=str(expected)):
            channel.normalize_address(typed)
    else:
        assert channel.normalize_address(typed) == expected


def test_other_countries_can_be_allowed_and_whatsapp_keeps_its_prefix(twilio):
    assert sms_channel(twilio, allowed_countries=["31", "32"]).normalize_address(
        "+32 470 12 34 56"
    ) == ("+32470123456")
    whatsapp = sms_channel(twilio, WhatsAppChannel)
    assert whatsapp.normalize_address("06 12345678") == f"whatsapp:{NUMBER}"
    assert whatsapp.normalize_address(f"WhatsApp:{NUMBER}") == f"whatsapp:{NUMBER}"


# --- render -------------------------------------------------------------------------------------


def test_a_dutch_accent_makes_ucs2_parts(twilio):
    message = sms_channel(twilio).render(view("Plasmolen is geëvacueerd."), "nl")
    assert sms_info(message.text).encoding == "UCS-2" and "geëvacueerd" in message.text
    assert message.parts == sms_info(message.text).segments == 1
    typographic = sms_channel(twilio).render(view("De dijk “houdt” – voorlopig…"), "nl")
    assert sms_info(typographic.text).encoding == "GSM-7"  # curly quotes do not cost UCS-2


@pytest.mark.parametrize(
    ("body", "max_segments"),
    [
        ("Het water stijgt snel. " * 40, 3),
        ("Geëvacueerd: Mook. " * 40, 3),
        ("Het water stijgt snel. " * 40, 1),
    ],
)
def test_long_text_is_cut_to_max_segments_with_the_link(twilio, body, max_segments):
    message = sms_channel(twilio, max_segments=max_segments).render(view(body), "nl")
    assert message.shortened and message.text.endswith(f"{PROXIED}/u/7")
    assert message.parts == sms_info(message.text).segments == max_segments


def test_whatsapp_has_no_segments(twilio):
    message = sms_channel(twilio, WhatsAppChannel).render(view("Geëvacueerd: Mook. " * 40), "nl")
    assert message.parts == 1 and not message.shortened and "Geëvacueerd" in message.text


# --- send: provider answer -> outcome -----------------------------------------------------------


def fill_rate_window(fake: FakeTwilio) -> None:
    fake.state.rate_limit = HeldFromFirstLook(1, 60.0, key=fake.account_sid)


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


FAKE_SETUPS = {
    "stop": lambda fake: fake.state.unsubscribed.add(NUMBER),
    "geo": lambda fake: fake.state.blocked_prefixes.add("+31"),
    "rate": fill_rate_window,
    "503": lambda fake: fake.state.faults.fail_next(1, 503),
    "500": lambda fake: fake.state.faults.fail_next(1, 500),
    "hang": lambda fake: fake.state.faults.hang_next(1, 2.0),
}
SEND_TABLE = [
    # (case, fake setup, channel changes, address, per_subscriber, expected)
    ("accepted", None, {}, NUMBER, True, None),
    ("STOP sent earlier: 21610", "stop", {}, NUMBER, True, RecipientGone),
    ("invalid number: 21211", None, {}, "+3161", True, RecipientGone),
    ("invalid number, no subscriber", None, {}, "+3161", False, PermanentFailure),
    ("geo permission: 21408", "geo", {}, NUMBER, True, PermanentFailure),
    ("rate limit: 429 / 20429", "rate", {}, NUMBER, True, RetryLater),
    ("outage: 503", "503", {}, NUMBER, True, RetryLater),
    ("server error: 500", "500", {}, NUMBER, True, RetryLater),
    ("timeout", "hang", {"timeout_seconds": 0.3}, NUMBER, True, RetryLater),
    ("wrong auth token: 20003", None, {"auth_token": "wrong"}, NUMBER, True, PermanentFailure),
    ("connection refused", None, {"api_url": closed_port()}, NUMBER, True, RetryLater),
]


@pytest.mark.parametrize(
    ("case", "setup", "changes", "address", "per_subscriber", "expected"),
    SEND_TABLE,
    ids=[row[0] for row in SEND_TABLE],
)
async def test_send_classifies_twilio_answers(
    twilio, case, setup, changes, address, per_subscriber, expected
):
    if setup:
        FAKE_SETUPS[setup](twilio)
    channel = sms_channel(twilio, **changes)
    message = channel.render(view("Het water stijgt."), "nl")
    target = Target(address=address, delivery_id=1, per_subscriber=per_subscriber)
    try:
        if expected is None:
            receipt = await channel.send(message, target)
            assert receipt.provider_id == twilio.state.messages[-1]["sid"]
            return
        with pytest.raises(expected) as caught:
            await channel.send(message, target)
        assert type(caught.value) is expected
        assert NUMBER not in str(caught.value) and "+3161" not in str(caught.value)
    finally:
        await channel.close()


async def test_send_passes_sender_body_and_status_callback(twilio):
    service = {"messaging_service_sid": "MG1"}
    for cls, changes, sender, callback in [
        (SmsChannel, {}, {"From": SENDER}, "/webhooks/twilio/status"),
        (SmsChannel, service, {"MessagingServiceSid": "MG1"}, "/webhooks/twilio/status"),
        (WhatsAppChannel, {}, {"From": f"whatsapp:{SENDER}"}, "/webhooks/twilio/whatsapp/status"),
    ]:
        channel = sms_channel(twilio, cls, **changes)
        address = channel.normalize_address(NUMBER)
        await channel.send(channel.render(view("Tekst"), "nl"), Target(address, delivery_id=1))
        await channel.close()
        sent = twilio.state.requests[-1]
        assert sent["To"] == address and "Tekst" in sent["Body"]
        assert {k: sent[k] for k in sender} == sender
        assert sent["StatusCallback"] == PROXIED + callback
    channel = sms_channel(twilio, status_callback=False)
    await channel.send(channel.render(view("Tekst"), "nl"), Target(NUMBER, delivery_id=2))
    await channel.close()
    assert "StatusCallback" not in twilio.state.requests[-1]


# --- signed webhooks (behind a proxy: the public URL differs from the request URL) ----------


@pytest.fixture
def proxied(app_factory, twilio):
    """The app as it runs behind a proxy at PROXIED; no dispatcher needed for webhooks."""
    app = app_factory(
        public_url=PROXIED,
        dispatch=False,
        channel_classes=[PlatformChannel, SmsChannel, WhatsAppChannel],
        channels={"sms": sms_config(twilio), "whatsapp": sms_config(twilio)},
    )
    with TestClient(app) as client:
        client.officer = token_for(app, "officer")
        yield client


def subscriber(client, address: str = NUMBER, channel: str = "sms") -> dict | None:
    with client.app.state.db.session_scope() as session:
        found = session.exec(
            select(Subscriber).where(Subscriber.channel == channel, Subscriber.address == address)
        ).first()
        if found is None:
            return None
        return {"state": found.state, "areas": area_codes(session, found.id)}


def formdata(name: str) -> dict[str, str]:
    """A recorded Twilio request body (tests/fixtures/twilio, see SOURCES.md)."""
    body = (FIXTURES / "twilio" / f"{name}.formdata").read_text()
    return dict(parse_qsl(body, keep_blank_values=True))


def questions(client) -> list[dict]:
    return client.get("/api/v1/questions", headers=auth(client.officer)).json()


def test_signature_is_checked_against_the_public_url(proxied, twilio):
    params, path = formdata("inbound_sms_courier_receiveValid"), "/webhooks/twilio/sms"
    internal = post_signed(proxied, path, params, twilio.auth_token, f"http://testserver{path}")
    assert internal.status_code == 403 and questions(proxied) == []
    answer = post_signed(proxied, path, params, twilio.auth_token)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/xml"
    assert [q["text"] for q in questions(proxied)] == ["Msg"]


def test_forged_requests_get_403_and_change_nothing(proxied, twilio):
    assert "aangemeld" in reply(proxied, twilio, "AANMELDEN 6585").text
    for body in ("STOP", "Waar zijn zandzakken?"):
        params, _ = signed_inbound_sms(PROXIED + "/webhooks/twilio/sms", NUMBER, body, "forged")
        assert post_signed(proxied, "/webhooks/twilio/sms", params, "forged").status_code == 403
    unsigned = proxied.post(
        "/webhooks/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"}
    )
    assert unsigned.status_code == 403 and "detail" in unsigned.json()
    assert subscriber(proxied)["state"] == "active" and questions(proxied) == []


@pytest.mark.parametrize(
    "fixture",
    [
        "status_callback_delivered_va-notify",
        "status_callback_failed_21610_courier_statusStop",
        "status_callback_sent_messagingservice_courier_tmsStatusExtra",
    ],
)
def test_real_status_callbacks_are_accepted(proxied, twilio, fixture):
    answer = post_signed(proxied, "/webhooks/twilio/status", formdata(fixture), twilio.auth_token)
    assert answer.status_code == 204


def test_replies_stop_subscribe_help_and_questions(proxied, twilio):
    subscribed = reply(proxied, twilio, "AANMELDEN 6586")
    assert "postcode 6586" in subscribed.text and subscribed.text.startswith("<?xml")
    assert subscriber(proxied) == {"state": "active", "areas": ["plasmolen"]}
    assert "postcode 6585" in reply(proxied, twilio, "aanmelden 6585 AB").text  # moved
    assert subscriber(proxied) == {"state": "active", "areas": ["mook"]}
    stopped = reply(proxied, twilio, "  Stop ")
    assert "<Message>" not in stopped.text  # Twilio and the carrier confirm a STOP themselves
    assert subscriber(proxied)["state"] == "unsubscribed"
    assert "postcode 6585" in reply(proxied, twilio, "aanmelden 6585 AB").text
    assert subscriber(proxied) == {"state": "active", "areas": ["mook"]}
    assert "hoort niet bij" in reply(proxied, twilio, "AANMELDEN 9999", "+31612345679").text
    assert "bijvoorbeeld AANMELDEN" in reply(proxied, twilio, "aanmelden bij Mook").text
    assert "AANMELDEN" in reply(proxied, twilio, "help").text
    assert "hele gemeente" in reply(proxied, twilio, "START", "+31612345670").text
    assert subscriber(proxied, "+31612345670") == {"state": "active", "areas": []}
    assert "Bedankt" in reply(proxied, twilio, "Is de Heumensebaan nog open?").text
    assert [q["text"] for q in questions(proxied)] == ["Is de Heumensebaan nog open?"]
    for word in ("STOPALL", "unsubscribe", "CANCEL", "end", "Quit", "STOPPEN."):
        reply(proxied, twilio, "AANMELDEN", "+31612345671")
        assert "<Message>" not in reply(proxied, twilio, word, "+31612345671").text
        assert subscriber(proxied, "+31612345671")["state"] == "unsubscribed", word


def test_whatsapp_replies_use_their_own_path_and_confirm_stop(proxied, twilio):
    path, sender = "/webhooks/twilio/whatsapp", f"whatsapp:{NUMBER}"
    assert "postcode 6587" in reply(proxied, twilio, "AANMELDEN 6587", sender, path).text
    assert subscriber(proxied, sender, "whatsapp") == {"state": "active", "areas": ["middelaar"]}
    assert "afgemeld" in reply(proxied, twilio, "stop", sender, path).text
    assert subscriber(proxied, sender, "whatsapp")["state"] == "unsubscribed"


@pytest.mark.parametrize("path", ["/webhooks/twilio/sms", "/webhooks/twilio/whatsapp"])
def test_a_replayed_message_makes_one_question(proxied, twilio, path):
    """Twilio's resend, or an attacker replaying a captured request: one question."""
    sender = NUMBER if path.endswith("sms") else f"whatsapp:{NUMBER}"
    params, _ = signed_inbound_sms(PROXIED + path, sender, "Waar is de noodopvang?", "x")
    answers = [post_signed(proxied, path, params, twilio.auth_token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert "Bedankt" in answers[0].text
    assert all("<Message>" not in a.text for a in answers[1:])
    assert [q["text"] for q in questions(proxied)] == ["Waar is de noodopvang?"]


def test_a_replayed_stop_or_sign_up_is_not_run_again(proxied, twilio):
    path = "/webhooks/twilio/sms"
    sign_up, _ = signed_inbound_sms(PROXIED + path, NUMBER, "AANMELDEN 6586", "x")
    stop, _ = signed_inbound_sms(PROXIED + path, NUMBER, "STOP", "x")
    for params in (sign_up, stop):
        assert post_signed(proxied, path, params, twilio.auth_token).status_code == 200
    assert subscriber(proxied)["state"] == "unsubscribed"
    reply(proxied, twilio, "AANMELDEN 6585")  # a new message: subscribes again
    for params in (stop, sign_up):  # replayed: nothing happens
        assert post_signed(proxied, path, params, twilio.auth_token).text == twiml_empty()
    assert subscriber(proxied) == {"state": "active", "areas": ["mook"]}


def replies_queued(client) -> list[DirectMessage]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(DirectMessage)))


def twiml_empty() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.mark.parametrize(
    "path", ["/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/whatsapp"]
)
def test_a_body_that_is_not_a_form_is_refused_not_a_server_error(proxied, twilio, path):
    params, _ = signed_inbound_sms(PROXIED + path, NUMBER, "AANMELDEN 6586", "x")
    signature = RequestValidator(twilio.auth_token).compute_signature(PROXIED + path, params)
    headers = {"X-Twilio-Signature": signature}
    multipart = proxied.post(
        path, data=params, files={"MediaUrl0": ("a.jpg", b"\xff" * 2048)}, headers=headers
    )
    as_json = proxied.post(path, json=params, headers=headers)
    as_text = proxied.post(path, content=b"Body=STOP", headers=headers)
    for answer in (multipart, as_json, as_text):
        assert answer.status_code == 403 and "form-urlencoded" in answer.json()["detail"]
    assert subscriber(proxied) is None and questions(proxied) == []


def test_a_message_a_crash_left_unhandled_is_answered_through_the_outbox(
    app_factory, twilio, settings
):
    params, _ = signed_inbound_sms(PROXIED + "/webhooks/twilio/sms", NUMBER, "Is er stroom?", "x")
    db = Database(settings.database_url)
    with db.session_scope() as session:  # stored and acknowledged, then kill -9
        store = {"payload": params, "sender": NUMBER, "lease": timedelta(0)}
        inbound.store(session, channel="sms", key=params["MessageSid"], **store)
    db.dispose()
    app = app_factory(
        public_url=PROXIED,
        dispatch=False,
        channel_classes=[PlatformChannel, SmsChannel],
        channels={"sms": sms_config(twilio)},
    )
    with TestClient(app) as client:
        client.officer = token_for(app, "officer")
        [queued] = wait_for(lambda: replies_queued(client))  # after the question
        assert (queued.channel, queued.address) == ("sms", NUMBER)
        assert queued.text.startswith("Bedankt")
        path = "/webhooks/twilio/sms"
        assert post_signed(client, path, params, twilio.auth_token).text == twiml_empty()
        assert [q["text"] for q in questions(client)] == ["Is er stroom?"]
        assert len(replies_queued(client)) == 1


def test_a_question_the_core_could_not_take_is_tried_again(proxied, twilio, question_fails_once):
    """Not "sorry, try again" (which makes a second message): the message stays stored, the
    core's next pass makes the question and the thanks go out through the outbox."""
    hooks = proxied.app.state.channels["sms"].context.hooks
    failures = question_fails_once(hooks)
    assert reply(proxied, twilio, "Gaat de school morgen open?").text == twiml_empty()
    assert len(failures) == 1 and questions(proxied) == []
    assert proxied.portal.call(hooks.recover_inbound) == 1
    assert [q["text"] for q in questions(proxied)] == ["Gaat de school morgen open?"]
    [queued] = replies_queued(proxied)
    assert queued.address == NUMBER and queued.text.startswith("Bedankt")


def test_erasing_a_subscriber_drops_their_messages_not_yet_handled(proxied, twilio):
    reply(proxied, twilio, "AANMELDEN 6586")
    with proxied.app.state.db.session_scope() as session:
        found = session.exec(select(Subscriber).where(Subscriber.address == NUMBER)).one()
        params, _ = signed_inbound_sms(PROXIED + "/webhooks/twilio/sms", NUMBER, "Mijn adres", "x")
        store = {"payload": params, "sender": NUMBER, "lease": timedelta(0)}
        inbound.store(session, channel="sms", key=params["MessageSid"], **store)
    erased = proxied.delete(f"/api/v1/subscribers/{found.id}", headers=auth(proxied.officer))
    assert erased.status_code == 204
    hooks = proxied.app.state.channels["sms"].context.hooks
    assert proxied.portal.call(hooks.recover_inbound) == 0
    assert questions(proxied) == []
    with proxied.app.state.db.session_scope() as session:
        rows = session.exec(select(InboundMessage)).all()
        assert rows and all(r.payload is None and r.sender is None for r in rows)


# --- whole flows over real HTTP: dispatcher, fake Twilio, signed status callbacks ----------


def delivery_states(app: LiveApp, channel: str = "sms") -> list[str]:
    with app.app.state.db.session_scope() as session:
        return [d.state for d in session.exec(select(Delivery).where(Delivery.channel == channel))]


def state_of(app: LiveApp, subscriber_id: int) -> str:
    with app.app.state.db.session_scope() as session:
        return session.get(Subscriber, subscriber_id).state


def test_update_is_texted_and_status_callbacks_mark_it_delivered(live, twilio):
    app = live()
    subscribe_number(app, "06 12345678", ["mook"])
    subscribe_number(app, "06 12345679", ["plasmolen"])
    subscribe_number(app, "06 12345670", ["mook"], channel="whatsapp")
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"], body="Zandzakken bij de brandweer.")
    wait_for(
        lambda: (
            counts(app, update).get("sms") == {"delivered": 1}
            and counts(app, update).get("whatsapp") == {"delivered": 1}
        )
    )
    assert len(twilio.state.bodies_to(NUMBER)) == 1 and twilio.state.bodies_to("+31612345679") == []
    assert "Zandzakken bij de brandweer." in twilio.state.bodies_to(NUMBER)[0]
    assert twilio.state.bodies_to("whatsapp:+31612345670")
    assert {c.url.removeprefix(app.url) for c in twilio.state.callbacks} == {
        "/webhooks/twilio/status",
        "/webhooks/twilio/whatsapp/status",
    }
    assert {c.status_code for c in twilio.state.callbacks} == {204}


def test_correction_goes_only_to_numbers_that_received_the_original(live, twilio):
    app = live()
    subscribe_number(app, NUMBER, ["mook"])
    subscribe_number(app, "+31612345679", ["plasmolen"])
    incident = new_incident(app.http, app.officer)
    original = post_update(app.http, app.officer, incident["id"], body="Peil 15,10 m NAP.")
    wait_for(lambda: counts(app, original).get("sms") == {"delivered": 1})
    subscribe_number(app, "+31612345670", ["mook"])  # joined after the original went out
    path = f"/api/v1/updates/{original['id']}/correct"
    correction = app.http.post(path, json={"body": "Peil 14,10 m NAP."}, headers=auth(app.officer))
    assert correction.status_code == 201, correction.text
    wait_for(lambda: counts(app, correction.json()).get("sms") == {"delivered": 1})
    texts = twilio.state.bodies_to(NUMBER)
    assert len(texts) == 2 and "Correctie" in texts[1] and "14,10" in texts[1]
    assert twilio.state.bodies_to("+31612345679") == twilio.state.bodies_to("+31612345670") == []


def test_unsubscribed_number_marks_the_subscriber_gone(live, twilio):
    app = live()
    twilio.state.unsubscribed.add(NUMBER)
    gone = subscribe_number(app, NUMBER, [])
    incident = new_incident(app.http, app.officer)
    post_update(app.http, app.officer, incident["id"])
    wait_for(lambda: state_of(app, gone) == "gone")
    assert delivery_states(app) == ["failed"] and twilio.state.messages == []


def test_failed_callback_with_21610_unsubscribes(live, twilio):
    app = live()
    twilio.state.delivery_failures[NUMBER] = ("failed", 21610)
    stopped = subscribe_number(app, NUMBER, [])
    incident = new_incident(app.http, app.officer)
    post_update(app.http, app.officer, incident["id"])
    wait_for(lambda: delivery_states(app) == ["failed"] and state_of(app, stopped) != "active")
    assert state_of(app, stopped) == "unsubscribed"


def test_inbound_sms_reaches_the_live_app(live, twilio):
    app = live()
    answer = post_inbound_sms(
        f"{app.url}/webhooks/twilio/sms", NUMBER, "AANMELDEN 6586", twilio.auth_token
    )
    assert answer.status_code == 200 and "6586" in answer.text
    with app.app.state.db.session_scope() as session:
        assert session.exec(select(Subscriber)).one().address == NUMBER


def test_a_provider_outage_loses_nothing(live, twilio):
    app = live(max_attempts=40)
    numbers = [f"+3161234560{i}" for i in range(6)]
    for number in numbers:
        subscribe_number(app, number, [])
    twilio.state.faults.fail_next(100_000, 503)  # Twilio is down ...
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"])
    wait_for(lambda: len(twilio.state.faults.injected) > len(numbers))  # ... for a while
    assert twilio.state.messages == []
    twilio.state.faults.clear()  # ... and back
    wait_for(lambda: counts(app, update).get("sms") == {"delivered": len(numbers)})
    assert all(len(twilio.state.bodies_to(n)) == 1 for n in numbers)
