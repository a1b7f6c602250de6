"""Web sign-up for SMS with double opt-in, against the Twilio stand-in: a code by SMS, the
confirmation, and the limits that keep the form from being used for SMS pumping."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast import keys
from broadcast.common import utcnow
from broadcast.delivery.models import DirectMessage
from broadcast.keys import InstallationKey
from broadcast.signup.models import SmsSignup
from broadcast.subscribers.models import Subscriber
from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from channels.webhook import WebhookChannel
from tests.conftest import WEBHOOK_SECRET
from tests.support import code_sent_to, sms_config, wait_for

NUMBER, TYPED = "+31612345678", "06 12345678"
SIGNUP, CONFIRM = "/api/v1/signup/sms", "/api/v1/signup/sms/confirm"


@pytest.fixture
def start(app_factory, twilio):
    clients = []

    def build(sms: dict | None = None, **settings) -> TestClient:
        channels = {"webhook": {"secret": WEBHOOK_SECRET}, "sms": sms_config(twilio, **(sms or {}))}
        app = app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, SmsChannel],
            channels=channels,
            **settings,
        )
        client = TestClient(app).__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(start) -> TestClient:
    return start()


def ask(client, phone: str = TYPED, **body):
    return client.post(SIGNUP, json={"phone": phone, "language": "nl"} | body)


def rows(client, model) -> list:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(model)))


def test_a_code_by_sms_then_the_confirmation_subscribes_the_number(client, twilio):
    answer = ask(client, postcode="6585 AB")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "code_sent", "expires_in": 600}
    code = code_sent_to(twilio, NUMBER)
    assert "Gemeente Mook en Middelaar" in twilio.state.bodies_to(NUMBER)[0]
    assert rows(client, Subscriber) == []  # nobody subscribed before confirming

    confirmed = client.post(CONFIRM, json={"phone": "+31 6 1234 5678", "code": code})
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json() == {"status": "subscribed", "areas": ["mook"], "language": "nl"}
    [subscriber] = rows(client, Subscriber)
    assert (subscriber.channel, subscriber.address, subscriber.state) == ("sms", NUMBER, "active")
    wait_for(lambda: len(twilio.state.bodies_to(NUMBER)) == 2)
    assert "Afmelden: stuur STOP" in twilio.state.bodies_to(NUMBER)[1]  # the welcome
    # The texts with the code and the welcome are erased from the outbox once they went out.
    wait_for(lambda: all(m.text is None and m.address is None for m in rows(client, DirectMessage)))
    again = client.post(CONFIRM, json={"phone": TYPED, "code": code})
    assert again.status_code == 422  # a code works once


def test_only_hashes_of_the_number_the_client_and_the_code_are_stored(client, twilio):
    assert ask(client, areas=["plasmolen"], language="en").status_code == 202
    code = code_sent_to(twilio, NUMBER)
    assert twilio.state.bodies_to(NUMBER)[0].startswith("Your code")
    [signup] = rows(client, SmsSignup)
    stored = " ".join(str(v) for v in signup.model_dump().values())
    assert code not in stored and "12345678" not in stored and "testclient" not in stored
    assert signup.areas == ["plasmolen"] and signup.language == "en"


def test_five_wrong_codes_and_even_the_right_one_is_refused(client, twilio):
    ask(client)
    code = code_sent_to(twilio, NUMBER)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1, 0):
        answer = client.post(CONFIRM, json={"phone": TYPED, "code": wrong})
        assert answer.status_code == 422
        assert answer.json() == {"detail": f"wrong code ({left} attempts left)"}
    answer = client.post(CONFIRM, json={"phone": TYPED, "code": code})
    assert answer.status_code == 429 and "ask for a new one" in answer.json()["detail"]
    assert rows(client, Subscriber) == [] and rows(client, SmsSignup)[0].attempts == 5


def test_an_expired_code_is_refused(client, twilio):
    ask(client)
    code = code_sent_to(twilio, NUMBER)
    with client.app.state.db.session_scope() as session:
        signup = session.exec(select(SmsSignup)).one()
        signup.expires_at = utcnow() - timedelta(seconds=1)
        session.add(signup)
    answer = client.post(CONFIRM, json={"phone": TYPED, "code": code})
    assert answer.status_code == 422 and "no valid code" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("+32 470 12 34 56", "only numbers from +31"),  # a Belgian mobile
        ("+49 151 23456789", "only numbers from +31"),  # a German mobile
        ("024 356 1234", "landline"),  # Dutch, but cannot receive SMS
        ("0900 1234567", "premium"),
        ("hallo", "not a phone number"),
        ("06 1234", "not a valid phone number"),
    ],
)
def test_numbers_from_elsewhere_or_that_cannot_text_get_no_code(client, twilio, phone, reason):
    answer = ask(client, phone)
    assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text
    assert rows(client, SmsSignup) == [] and twilio.state.requests == []


def test_the_country_allow_list_is_a_setting(start, twilio):
    client = start(sms={"allowed_countries": "31,32"}, signup_countries=["31", "32"])
    assert ask(client, "+32 470 12 34 56").status_code == 202
    code_sent_to(twilio, "+32470123456")


def test_an_unknown_postcode_or_area_is_refused(client):
    assert ask(client, postcode="1234").status_code == 422
    assert ask(client, areas=["atlantis"]).status_code == 422
    assert rows(client, SmsSignup) == []


def test_three_codes_per_number_an_hour(client, twilio):
    for _ in range(3):
        assert ask(client).status_code == 202
    answer = ask(client)
    assert answer.status_code == 429 and "this number" in answer.json()["detail"]
    assert 3500 <= int(answer.headers["Retry-After"]) <= 3600
    assert len(code_sent_to(twilio, NUMBER, 3)) == 6
    assert len(rows(client, SmsSignup)) == 3


def test_codes_per_client_address_are_limited(start, twilio):
    client = start(signup_codes_per_client=2)
    assert ask(client, "0612345671").status_code == 202
    assert ask(client, "0612345672").status_code == 202
    answer = ask(client, "0612345673")
    assert answer.status_code == 429 and "this address" in answer.json()["detail"]
    assert "Retry-After" in answer.headers


def test_a_global_cap_per_hour_stops_a_pumping_run(start, twilio):
    client = start(signup_codes_per_hour=5, signup_codes_per_client=100)
    answers = [ask(client, f"06123456{n:02d}").status_code for n in range(8)]
    assert answers == [202] * 5 + [429] * 3
    wait_for(lambda: len(twilio.state.messages) == 5)


def test_sign_up_needs_the_sms_channel(app_factory):
    with TestClient(app_factory()) as client:  # Twilio not configured
        assert ask(client).status_code == 503


def test_no_phone_number_reaches_the_logs(client, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    ask(client)
    code = code_sent_to(twilio, NUMBER)
    client.post(CONFIRM, json={"phone": TYPED, "code": "000000" if code != "000000" else "1"})
    client.post(CONFIRM, json={"phone": TYPED, "code": code})
    wait_for(lambda: len(twilio.state.bodies_to(NUMBER)) == 2)
    assert caplog.records  # the service did log
    assert not re.search(r"6\s?1234\s?5678", caplog.text)  # (the account SID has 12345678)
    assert code not in caplog.text


def test_without_a_signup_secret_the_number_is_keyed_with_the_installation_key(start, twilio):
    client = start(signup_secret=None)
    assert ask(client).status_code == 202
    code = code_sent_to(twilio, NUMBER)
    [signup] = rows(client, SmsSignup)
    [key] = rows(client, InstallationKey)
    assert signup.phone_key == keys.digest(key.value.encode(), NUMBER)
    assert client.post(CONFIRM, json={"phone": TYPED, "code": code}).status_code == 201
