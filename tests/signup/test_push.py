"""Web push sign-up: a browser's subscription posted by the page becomes a subscriber, gets
every update through the push service stand-in (decrypted there as the browser would), and is
erased when the page unsubscribes or marked gone when the push service says it is."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.subscribers.models import Subscriber, SubscriberState
from channels.platform import PlatformChannel
from channels.push import PushChannel
from channels.push.crypto import b64url, new_key_pair
from tests.fakes.push import FakePushService
from tests.support import new_incident, post_update, token_for, wait_for

SIGNUP, UNSUBSCRIBE = "/api/v1/signup/push", "/api/v1/signup/push/unsubscribe"
PRIVATE_KEY, PUBLIC_KEY = new_key_pair()


def push_config(**changes) -> dict:
    values = {"vapid_private_key": PRIVATE_KEY, "vapid_subject": "mailto:crisis@mook.example"}
    return values | {"allow_private_addresses": True, "timeout_seconds": 5} | changes


@pytest.fixture
def push():
    with FakePushService() as fake:
        yield fake


@pytest.fixture
def start(app_factory):
    clients = []

    def build(push: dict | None = None, **settings) -> TestClient:
        app = app_factory(
            channel_classes=[PlatformChannel, PushChannel],
            channels={"push": push_config(**(push or {}))},
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


def subscribers(client) -> list[Subscriber]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(Subscriber).where(Subscriber.channel == "push")))


def sign_up(client, subscription: dict, **body):
    return client.post(SIGNUP, json={"subscription": subscription, "language": "nl"} | body)


def test_the_page_gets_the_key_and_a_subscription_gets_every_update(client, push):
    key = client.get("/api/v1/push/key").json()["public_key"]
    assert key == PUBLIC_KEY
    browser = push.subscribe(application_server_key=key)
    answer = sign_up(client, browser.as_json(), areas=["mook"], language="en")
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "subscribed", "areas": ["mook"], "language": "en"}

    officer = token_for(client.app, "officer")
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], body="Het water stijgt.")
    wait_for(lambda: push.state.received, timeout=60)
    payload = push.state.received[0].payload
    assert payload["url"].endswith(f"/u/{update['id']}") and payload["title"]
    assert payload["lang"] == "en"


def test_the_same_endpoint_again_is_the_same_subscriber_with_new_areas_and_keys(client, push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    assert sign_up(client, browser.as_json()).status_code == 201
    (first,) = subscribers(client)
    renewed = browser.as_json()
    renewed["keys"]["auth"] = b64url(b"\x01" * 16)
    answer = sign_up(client, renewed, areas=["mook"], language="en")
    assert answer.status_code == 201 and answer.json()["areas"] == ["mook"]
    (again,) = subscribers(client)
    assert again.id == first.id and again.language == "en"
    assert b64url(b"\x01" * 16) in again.address


def test_unsubscribing_from_the_page_erases_the_subscriber(client, push):
    browser = push.subscribe()
    assert sign_up(client, browser.as_json()).status_code == 201
    assert client.post(UNSUBSCRIBE, json={"endpoint": browser.endpoint}).status_code == 204
    assert subscribers(client) == []
    assert client.post(UNSUBSCRIBE, json={"endpoint": browser.endpoint}).status_code == 204


def test_a_subscription_the_push_service_says_is_gone_is_marked_gone(client, push):
    browser = push.subscribe(application_server_key=PUBLIC_KEY)
    assert sign_up(client, browser.as_json()).status_code == 201
    push.state.unsubscribe(browser)
    officer = token_for(client.app, "officer")
    post_update(client, officer, new_incident(client, officer)["id"])

    def gone():
        return [s for s in subscribers(client) if s.state == SubscriberState.gone]

    wait_for(gone, timeout=60)
    assert push.state.refused == [(410, "subscription expired or unsubscribed")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"p256dh": "BAAA"}, "P-256"),
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, "P-256"),
        ({"auth": b64url(b"x" * 15)}, "16 bytes"),
        ({"auth": ""}, None),
    ],
)
def test_keys_that_cannot_be_used_are_422(client, push, change, reason):
    subscription = push.subscribe().as_json()
    subscription["keys"] |= change
    answer = sign_up(client, subscription)
    assert answer.status_code == 422, answer.text
    if reason:
        assert reason in answer.json()["detail"]
    assert subscribers(client) == []


@pytest.mark.parametrize(
    "endpoint", ["http://push.example.net/x", "https://10.0.0.1/push", "https://localhost/p"]
)
def test_an_endpoint_not_https_on_a_public_address_is_422(start, push, endpoint):
    client = start(push={"allow_private_addresses": False})
    subscription = push.subscribe().as_json() | {"endpoint": endpoint}
    assert sign_up(client, subscription).status_code == 422
    assert subscribers(client) == []


def test_an_unknown_area_is_422(client, push):
    assert sign_up(client, push.subscribe().as_json(), areas=["atlantis"]).status_code == 422


def test_sign_ups_per_client_address_are_limited(start, push):
    client = start(signup_push_per_client=2)
    for _ in range(2):
        assert sign_up(client, push.subscribe().as_json()).status_code == 201
    refused = sign_up(client, push.subscribe().as_json())
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert len(subscribers(client)) == 2


def test_without_vapid_keys_push_is_off(start, push):
    client = start(push={"vapid_private_key": ""})
    assert client.get("/api/v1/push/key").status_code == 404
    assert sign_up(client, push.subscribe().as_json()).status_code == 503
