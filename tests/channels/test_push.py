"""Web push against the push service stand-in (tests/fakes/push.py), which checks each VAPID
token with PyJWT and decrypts each message with the browser's private key, as a browser would."""

from __future__ import annotations

import json
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from broadcast.cli import app as cli
from broadcast.delivery.adapters import configure
from broadcast.settings import Settings
from channels.base import ChannelContext, Target, UpdateView
from channels.errors import NotConfigured, PermanentFailure, RecipientGone, RetryLater
from channels.push import PushChannel, PushSettings, crypto
from tests.fakes.push import FakePushService

PUBLIC = "https://crisis.gemeente.example"
PRIVATE_KEY, PUBLIC_KEY = crypto.new_key_pair()
SUBJECT = "mailto:crisis@gemeente.example"


class Clock:
    """Starts at the real time (the stand-in checks ``exp`` against it) and moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def channel(clock=crypto.wall_clock, **settings) -> PushChannel:
    values = {"vapid_private_key": PRIVATE_KEY, "vapid_subject": SUBJECT}
    values |= {"allow_private_addresses": True, "timeout_seconds": 5} | settings
    return PushChannel(PushSettings(**values), ChannelContext(public_url=PUBLIC), clock=clock)


def view(severity: str = "warning", **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": severity, "url": f"{PUBLIC}/u/7"}
    fields |= {"body": {"nl": "Het water stijgt.", "en": "The water is rising."}}
    return UpdateView(
        **fields | {"incident_title": "Hoogwater Maas", "incident_slug": "maas"} | changes
    )


@pytest.fixture
def push():
    with FakePushService() as fake:
        yield fake


async def send(adapter: PushChannel, update: UpdateView, address: str, language: str = "nl"):
    try:
        return await adapter.send(adapter.render(update, language), Target(address, 1))
    finally:
        await adapter.close()


async def test_the_browser_decrypts_title_body_and_link(push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    receipt = await send(channel(), view(), browser.subscription.address, "en")
    (received,) = push.state.received
    assert received.payload["title"] == "Warning – Hoogwater Maas"
    assert received.payload["body"] == "The water is rising."
    assert received.payload["url"] == f"{PUBLIC}/u/7"
    assert received.headers["content-encoding"] == "aes128gcm"
    assert received.vapid_claims["sub"] == SUBJECT and received.vapid_claims["aud"] == push.url
    assert receipt.provider_id == f"{push.url}/m/1" and receipt.delivered


@pytest.mark.parametrize(
    ("severity", "ttl", "urgency"),
    [("info", "21600", "low"), ("advisory", "43200", "normal"), ("emergency", "86400", "high")],
)
async def test_ttl_and_urgency_follow_the_severity(push, severity, ttl, urgency):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    await send(channel(), view(severity), browser.subscription.address)
    headers = push.state.received[-1].headers
    assert (headers["ttl"], headers["urgency"]) == (ttl, urgency)
    assert len(headers["topic"]) <= 32  # a newer update of the incident replaces a waiting one


async def test_one_vapid_token_per_push_service_renewed_before_it_expires(push):
    clock = Clock()
    adapter = channel(clock)
    browsers = [push.subscribe(application_server_key=PUBLIC_KEY) for _ in range(3)]
    for browser in browsers:
        await adapter.send(adapter.render(view(), "nl"), Target(browser.subscription.address, 1))
    tokens = {r.headers["authorization"] for r in push.state.received}
    assert len(tokens) == 1
    clock.now += crypto.TOKEN_LIFETIME - crypto.TOKEN_RENEW_BEFORE + 1
    await send(adapter, view(), browsers[0].subscription.address)
    assert push.state.received[-1].headers["authorization"] not in tokens
    assert push.state.received[-1].vapid_claims["exp"] > clock.now


async def test_a_long_update_is_cut_with_the_link_and_fits_one_record(push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    long = view(body={"nl": "Zandzakken 🌊 bij de brandweer. " * 400}, incident_title="H" * 500)
    await send(channel(), long, browser.subscription.address)
    payload = push.state.received[-1].payload
    assert payload["body"].endswith(f"{PUBLIC}/u/7") and len(payload["body"]) <= 300
    assert len(payload["title"]) <= 120


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, RetryLater), (503, RetryLater), (413, PermanentFailure), (400, PermanentFailure)],
)
async def test_push_service_answers_are_classified(push, status, error):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    push.state.answer(status, **{"Retry-After": "30"})
    with pytest.raises(error) as raised:
        await send(channel(), view(), browser.subscription.address)
    assert type(raised.value) is error
    if error is RetryLater:
        assert raised.value.scope == "target" and raised.value.retry_after == 30


async def test_an_unknown_endpoint_is_gone(push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    keys = browser.subscription
    address = crypto.Subscription(f"{push.url}/push/never", keys.p256dh, keys.auth)
    with pytest.raises(RecipientGone):
        await send(channel(), view(), address.address)


async def test_the_wrong_vapid_key_is_refused_by_the_push_service(push):
    _, other = crypto.new_key_pair()
    browser = push.subscribe(application_server_key=other)
    with pytest.raises(PermanentFailure, match="403"):
        await send(channel(), view(), browser.subscription.address)
    assert push.state.refused == [(403, "not the key the browser subscribed with")]


# --- addresses ------------------------------------------------------------------------------------


def test_a_subscription_is_checked_and_stored_in_one_canonical_form(push):
    browser = push.subscribe()
    keys = browser.as_json()["keys"]
    typed = json.dumps(
        {
            "keys": {"auth": keys["auth"] + "==", "p256dh": keys["p256dh"]},
            "endpoint": browser.endpoint,
        }
    )
    assert channel().normalize_address(typed) == browser.subscription.address


@pytest.mark.parametrize(
    ("p256dh", "auth", "reason"),
    [
        ("BAAA", None, "P-256"),
        (crypto.b64url(b"\x04" + b"\x01" * 64), None, "P-256"),  # not on the curve
        (None, crypto.b64url(b"x" * 15), "16 bytes"),
        ("not base64!", None, "base64url"),
    ],
)
def test_keys_that_cannot_be_used_are_refused(push, p256dh, auth, reason):
    keys = push.subscribe().as_json()["keys"]
    with pytest.raises(ValueError, match=reason):
        crypto.subscription(push.url + "/push/x", p256dh or keys["p256dh"], auth or keys["auth"])


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/x",  # plain http
        "https://127.0.0.1/push/x",
        "https://10.1.2.3/push/x",
        "https://localhost/push/x",
        "https://[::1]/push/x",
        "ftp://push.example.net/x",
    ],
)
def test_endpoints_must_be_https_on_public_addresses(push, endpoint):
    keys = push.subscribe().subscription
    address = crypto.Subscription(endpoint, keys.p256dh, keys.auth).address
    with pytest.raises(ValueError):
        channel(allow_private_addresses=False).normalize_address(address)


def test_allowing_private_addresses_also_allows_plain_http_there(push):
    address = push.subscribe().subscription.address
    assert channel(allow_private_addresses=True).normalize_address(address) == address


async def test_a_private_endpoint_stored_anyway_fails_at_send_without_a_connection(push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    https = browser.subscription.address.replace("http://", "https://")
    with pytest.raises(PermanentFailure, match="non-public"):
        await send(channel(allow_private_addresses=False), view(), https)
    assert push.state.received == [] and push.state.refused == []


# --- settings, key and CLI ----------------------------------------------------------------------


def test_contract_environment_variables_configure_the_channel(monkeypatch):
    context = ChannelContext(public_url=PUBLIC)
    with pytest.raises(NotConfigured, match="BROADCAST_VAPID_PRIVATE_KEY"):
        configure(PushChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_VAPID_PRIVATE_KEY", PRIVATE_KEY)
    with pytest.raises(NotConfigured, match="BROADCAST_VAPID_SUBJECT"):
        configure(PushChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_VAPID_SUBJECT", SUBJECT)
    monkeypatch.setenv("BROADCAST_PUSH_ALLOW_PRIVATE_ADDRESSES", "true")
    adapter = configure(PushChannel, Settings(), context)
    assert isinstance(adapter, PushChannel)
    assert adapter.settings.allow_private_addresses and adapter.public_key == PUBLIC_KEY


@pytest.mark.parametrize(
    ("key", "subject", "reason"),
    [
        ("abc", SUBJECT, "32 bytes"),
        (crypto.b64url(b"\xff" * 32), SUBJECT, "not a valid P-256 key"),
        (PRIVATE_KEY, "crisis@gemeente.example", "mailto: or https:"),
    ],
)
def test_a_wrong_key_or_subject_keeps_the_channel_off(key, subject, reason):
    with pytest.raises(ValueError, match=reason):
        channel(vapid_private_key=key, vapid_subject=subject)


def test_the_public_key_is_served_for_the_page():
    app = FastAPI()
    app.include_router(channel().router())
    answer = TestClient(app).get("/api/v1/push/key")
    assert answer.status_code == 200 and answer.json() == {"public_key": PUBLIC_KEY}
    assert len(crypto.unb64url(answer.json()["public_key"])) == 65


def test_the_cli_prints_a_new_key_pair():
    result = CliRunner().invoke(cli, ["push", "keys"])
    assert result.exit_code == 0, result.output
    private = result.output.split("BROADCAST_VAPID_PRIVATE_KEY=", 1)[1].split()[0]
    public = result.output.rsplit(": ", 1)[1].strip()
    adapter = channel(vapid_private_key=private)
    assert adapter.public_key == public and private != PRIVATE_KEY
