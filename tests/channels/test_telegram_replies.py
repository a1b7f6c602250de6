"""The bot's replies go through the outbox (``InboundHooks.reply``): paced with the broadcast,
retried through an outage, ahead of a running broadcast, erased once sent, never sent late."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery import direct, queue
from broadcast.delivery.models import Delivery, DirectMessage
from broadcast.fanout.views import UpdateRenderer
from channels.platform import PlatformChannel
from channels.telegram import TelegramChannel
from channels.webhook import WebhookChannel
from tests.fakes.server import SlidingWindow
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    FIRST_CHAT,
    TELEGRAM_START,
    add_residents,
    build_client,
    deliver,
    new_incident,
    payload,
    post_update,
    said,
    telegram_settings,
    token_for,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
CHAT = 1111111  # the chat of the /start fixture


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        server.state.chat_limit = SlidingWindow(100, 1.0)
        yield server


@pytest.fixture
def client(app_factory, fake):
    with build_client(app_factory, fake, channel_id=None) as test_client:
        yield test_client


def replies(client) -> list[tuple[Delivery, DirectMessage]]:
    with client.app.state.db.session_scope() as session:
        query = select(Delivery, DirectMessage).join(
            DirectMessage, DirectMessage.id == Delivery.direct_message_id
        )
        return list(session.exec(query))


def test_a_reply_is_a_delivery_and_its_personal_data_is_erased_once_sent(client, fake):
    deliver(client, payload(TELEGRAM_START, "/help"))
    assert "/gebied 6585" in said(fake, CHAT, 1)[0]
    [(row, message)] = wait_for(
        lambda: [r for r in replies(client) if r[0].state == "delivered"] or None
    )
    assert row.channel == "telegram" and row.target == f"m{message.id}" and row.update_id is None
    assert message.address is None and message.text is None  # gone once it went out


def test_a_reply_waits_out_an_outage_and_arrives_once(client, fake):
    fake.state.faults.fail_next(3, 502)
    deliver(client, payload(TELEGRAM_START, "/help"))
    said(fake, CHAT, 1)
    [(row, _)] = wait_for(lambda: [r for r in replies(client) if r[0].state == "delivered"] or None)
    assert row.attempts == 4 and len(fake.state.faults.injected) == 3
    assert len(fake.state.texts(CHAT)) == 1


def test_direct_messages_are_claimed_before_update_deliveries(app_factory, fake):
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
        channels=telegram_settings(fake, channel_id=None),
        dispatch=False,  # nobody sends: the test claims by hand
    )
    with TestClient(app) as client:
        claim_order(client)


def claim_order(client) -> None:
    officer = token_for(client.app, "officer")
    add_residents(client, 30)
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"])
    with client.app.state.db.session_scope() as session:
        queued = direct.queue(session, channel="telegram", address=str(CHAT), text="Hallo")
    with client.app.state.db.session_scope() as session:
        jobs = queue.claim(
            session,
            "telegram",
            limit=5,
            lease_seconds=60,
            renderer=UpdateRenderer(client.app.state.settings),
        )
    assert [j.direct_message_id for j in jobs] == [queued.id, None, None, None, None]
    assert jobs[0].message.text == "Hallo" and jobs[0].update is None
    assert jobs[0].address == str(CHAT) and jobs[0].per_subscriber


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the lane, not the store
def test_a_reply_is_sent_ahead_of_a_running_broadcast(client, fake):
    """The reply waits only for what the lane has claimed already (at most three batches of
    two seconds' worth), not for the rest of the broadcast."""
    residents = 300  # about ten seconds at Telegram's pace
    officer = token_for(client.app, "officer")
    add_residents(client, residents)
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"], body="Evacuatie om 14:00.")
    wait_for(lambda: len(fake.state.sent) >= 10)
    deliver(client, payload(TELEGRAM_START, "/help"))
    said(fake, CHAT, 1)
    wait_for(lambda: len(fake.state.sent) == residents + 1)

    order = [m.chat_id for m in fake.state.sent]
    after = len(order) - 1 - order.index(CHAT)
    assert after >= 100, f"the reply waited for all but {after} of the broadcast"
    assert set(order) - {CHAT} == {FIRST_CHAT + n for n in range(residents)}
    assert all(r["chat_id"] != CHAT for r in fake.state.rate_limited)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_direct_message_past_its_time_is_not_sent(client, fake):
    with client.app.state.db.session_scope() as session:
        queued = direct.queue(session, channel="telegram", address=str(CHAT), text="Uw code: 1")
        queued.expires_at = queued.created_at  # already too late when it is claimed
        session.add(queued)
    [(row, message)] = wait_for(
        lambda: [r for r in replies(client) if r[0].state == "failed"] or None
    )
    assert row.last_error == "expired before it could be sent" and message.text is None
    assert fake.state.sent == []


def test_when_the_outbox_cannot_take_a_reply_it_is_sent_directly(client, fake, monkeypatch):
    hooks = client.app.state.channels["telegram"].context.hooks

    async def database_down(**_):
        raise RuntimeError("database is down")

    monkeypatch.setattr(hooks, "reply", database_down)
    assert deliver(client, payload(TELEGRAM_START, "/help")).status_code == 200
    assert "/gebied 6585" in said(fake, CHAT, 1)[0]
    assert replies(client) == []
