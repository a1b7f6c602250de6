"""Webhook receivers on private addresses are refused (SSRF): when a subscriber is added, when the
channel starts with its configured URLs, and at every send, before any connection is made.
The test receiver listens on 127.0.0.1, so here the guard is on (the default) unless a test
switches ``allow_private_addresses`` on."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from broadcast.common import utcnow
from broadcast.delivery.models import Delivery
from broadcast.subscribers.models import Subscriber, SubscriberState
from channels.base import ChannelContext, Message, Target
from channels.errors import PermanentFailure
from channels.webhook import WebhookChannel, WebhookSettings
from tests.conftest import WEBHOOK_SECRET
from tests.support import auth, new_incident, post_update, token_for, wait_for

GUARDED = {"webhook": {"secret": WEBHOOK_SECRET}}
PRIVATE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://127.0.0.1:22/",
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://[::ffff:192.168.1.1]/hook",
]


def webhook_deliveries(client) -> list[Delivery]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.channel == "webhook")))


def subscriber_count(client) -> int:
    with client.app.state.db.session_scope() as session:
        return session.exec(select(func.count()).select_from(Subscriber)).one()


@pytest.mark.parametrize("url", PRIVATE)
def test_a_subscriber_on_a_private_address_is_refused_with_422(app_factory, url):
    with TestClient(app_factory(channels=GUARDED)) as client:
        officer = token_for(client.app, "officer")
        response = client.post(
            "/api/v1/subscribers",
            headers=auth(officer),
            json={"channel": "webhook", "address": url, "areas": []},
        )

        assert response.status_code == 422, response.text
        assert "non-public address" in response.json()["detail"]
        assert subscriber_count(client) == 0


def test_a_private_subscriber_stored_anyway_fails_at_send_without_a_connection(
    app_factory, receiver
):
    """A row from before the guard, or a name that now resolves inside (localhost): the
    delivery fails at once, is not retried, and the receiver hears nothing."""
    with TestClient(app_factory(channels=GUARDED)) as client:
        officer = token_for(client.app, "officer")
        port = receiver.url.rsplit(":", 1)[1]
        with client.app.state.db.session_scope() as session:
            for address in (f"{receiver.url}/old-row", f"http://localhost:{port}/by-name"):
                session.add(
                    Subscriber(
                        channel="webhook",
                        address=address,
                        state=SubscriberState.active,
                        consent_at=utcnow(),
                    )
                )
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"])

        rows = wait_for(
            lambda: (
                (found := webhook_deliveries(client))
                and all(d.state == "failed" for d in found)
                and found
            )
        )
        counts = client.get(
            f"/api/v1/updates/{update['id']}/deliveries", headers=auth(officer)
        ).json()

    assert len(rows) == 2
    assert all(r.attempts == 1 and "non-public address" in r.last_error for r in rows)
    assert counts["webhook"] == {"failed": 2}
    assert receiver.state.received == []


def test_configured_urls_on_private_addresses_keep_the_channel_off(app_factory, receiver):
    channels = {"webhook": {"secret": WEBHOOK_SECRET, "urls": f"{receiver.url}/hook"}}
    with TestClient(app_factory(channels=channels)) as client:
        assert "webhook" not in client.app.state.channels.active
        assert "non-public address" in client.app.state.channels.disabled["webhook"]
        assert client.get("/healthz").json()["channels"]["off"]["webhook"].startswith("refused")


def test_the_setting_allows_a_local_receiver(app_factory, receiver, monkeypatch):
    monkeypatch.setenv("BROADCAST_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    with TestClient(app_factory(channels=GUARDED)) as client:
        officer = token_for(client.app, "officer")
        response = client.post(
            "/api/v1/subscribers",
            headers=auth(officer),
            json={"channel": "webhook", "address": f"{receiver.url}/local", "areas": []},
        )
        assert response.status_code == 201, response.text
        incident = new_incident(client, officer)
        post_update(client, officer, incident["id"])
        wait_for(lambda: [d for d in webhook_deliveries(client) if d.state == "delivered"])
    assert [r.path for r in receiver.state.received] == ["/local"]


def test_a_redirect_is_never_followed(app_factory, receiver):
    with TestClient(app_factory()) as client:  # the suite's settings: local receivers allowed
        officer = token_for(client.app, "officer")
        client.post(
            "/api/v1/subscribers",
            headers=auth(officer),
            json={"channel": "webhook", "address": f"{receiver.url}/moved", "areas": []},
        )
        receiver.state.answer(302, times=1, Location=f"{receiver.url}/elsewhere")
        incident = new_incident(client, officer)
        post_update(client, officer, incident["id"])
        row = wait_for(
            lambda: next((d for d in webhook_deliveries(client) if d.state == "failed"), None)
        )
    assert (row.attempts, row.last_error) == (1, "HTTP 302")
    assert receiver.state.received == []


def test_a_name_that_resolves_inside_at_send_time_is_refused(monkeypatch):
    """A name passes when it is added (no DNS lookup then); when it resolves inside as the
    message goes out (DNS rebinding), the send is refused on the very answer it would have
    connected to."""
    from channels import netguard

    inside = [(2, 1, 6, "", ("10.0.0.7", 443))]
    monkeypatch.setattr(netguard.socket, "getaddrinfo", lambda *args, **kwargs: inside)

    async def scenario() -> None:
        channel = WebhookChannel(
            WebhookSettings(secret=WEBHOOK_SECRET), ChannelContext("http://127.0.0.1:8000")
        )
        address = channel.normalize_address("https://partner.example/hook")
        try:
            with pytest.raises(PermanentFailure, match=r"partner\.example resolves to 10\.0\.0\.7"):
                await channel.send(
                    Message(update_id=1, language="nl", text="x", data={"id": 1}),
                    Target(address=address, delivery_id=1),
                )
        finally:
            await channel.close()

    asyncio.run(scenario())


def test_only_global_unicast_addresses_are_public():
    from ipaddress import ip_address

    from channels.netguard import is_public

    assert is_public(ip_address("93.184.215.14"))
    assert is_public(ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    assert not any(
        is_public(ip_address(a))
        for a in ("0.0.0.0", "100.64.0.1", "224.0.0.1", "fe80::1", "fc00::1", "::ffff:10.0.0.1")
    )


def test_the_input_check_makes_no_dns_lookup(monkeypatch):
    """It runs inside database transactions: names wait for the connection to be checked."""
    from channels import netguard

    def no_lookup(*args, **kwargs):
        raise AssertionError("a DNS lookup during input validation")

    monkeypatch.setattr(netguard.socket, "getaddrinfo", no_lookup)
    netguard.check_url("https://partner.example/hook")
    netguard.check_url("https://93.184.215.14/hook")
    with pytest.raises(netguard.PrivateAddress):
        netguard.check_url("http://api.localhost/hook")


@pytest.mark.parametrize("address", ["http://2130706433:9/hook", "http://0x7f.1:9/hook"])
def test_other_spellings_of_loopback_are_refused_when_connecting(address):
    """Numeric forms that are not IP literals to Python but are to the resolver."""

    async def scenario() -> None:
        channel = WebhookChannel(
            WebhookSettings(secret=WEBHOOK_SECRET), ChannelContext("http://127.0.0.1:8000")
        )
        try:
            with pytest.raises(PermanentFailure, match=r"resolves to 127\.0\.0\.1, a non-public"):
                await channel.send(
                    Message(update_id=1, language="nl", text="x", data={"id": 1}),
                    Target(address=channel.normalize_address(address), delivery_id=1),
                )
        finally:
            await channel.close()

    asyncio.run(scenario())
