"""A chat that moved (Telegram: "group chat was upgraded to a supergroup chat", with the new id):
a subscriber's address follows it; the configured broadcast target fails at once with what the
operator has to do; nothing loops."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.audit import AuditEvent
from broadcast.subscribers.models import Subscriber
from channels.platform import PlatformChannel
from channels.telegram import TelegramChannel
from channels.webhook import WebhookChannel
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    build_client,
    new_incident,
    post_update,
    settled,
    subscribe_chat,
    telegram_settings,
    token_for,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
GROUP, SUPERGROUP = -4001, -1004001


def requests_to(fake: FakeTelegram, chat: int) -> int:
    return sum(
        1
        for method, p in fake.state.requests
        if method == "sendMessage" and str(p["chat_id"]) == str(chat)
    )


def subscriber(client, subscriber_id: int) -> Subscriber:
    with client.app.state.db.session_scope() as session:
        return session.get(Subscriber, subscriber_id)


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


def test_a_moved_broadcast_target_fails_at_once_and_tells_the_operator(app_factory, fake):
    fake.state.migrated_chats[GROUP] = SUPERGROUP
    with build_client(app_factory, fake, channel_id=str(GROUP)) as client:
        officer = token_for(client.app, "officer")
        subscribe_chat(client, officer, 1001, [])
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"])
        rows = wait_for(lambda: settled(client, update["id"], 2))
        time.sleep(0.5)  # time enough to loop, if it did
        assert requests_to(fake, GROUP) == 1

    moved = next(d for d in rows if d.target == str(GROUP))
    assert moved.state == "failed" and moved.attempts == 1
    assert str(SUPERGROUP) in moved.last_error and "setting" in moved.last_error
    assert next(d for d in rows if d.target.startswith("s")).state == "delivered"


def test_a_subscribed_group_that_moved_is_followed_to_its_new_address(app_factory, fake):
    fake.state.migrated_chats[GROUP] = SUPERGROUP
    with build_client(app_factory, fake, channel_id=None) as client:
        officer = token_for(client.app, "officer")
        group = subscribe_chat(client, officer, GROUP, [])
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"])
        [row] = wait_for(lambda: settled(client, update["id"], 1))
        assert subscriber(client, group).address == str(SUPERGROUP)
        with client.app.state.db.session_scope() as session:
            actions = session.exec(select(AuditEvent.action)).all()

    assert row.state == "delivered" and row.attempts == 2
    assert fake.state.texts(SUPERGROUP) and fake.state.texts(GROUP) == []
    assert "subscriber.moved" in actions


def test_moves_in_a_circle_end_when_the_attempts_run_out(app_factory, fake):
    fake.state.migrated_chats.update({GROUP: SUPERGROUP, SUPERGROUP: GROUP})
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
        channels=telegram_settings(fake, channel_id=None),
        max_attempts=3,
    )
    with TestClient(app) as client:
        officer = token_for(client.app, "officer")
        subscribe_chat(client, officer, GROUP, [])
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"])
        [row] = wait_for(lambda: settled(client, update["id"], 1))
        time.sleep(0.5)

    assert row.state == "failed" and row.attempts == 3
    assert "moved 3 times" in row.last_error
    assert requests_to(fake, GROUP) + requests_to(fake, SUPERGROUP) == 3


def test_a_group_that_moved_onto_another_subscriber_is_not_sent_twice(app_factory, fake):
    fake.state.migrated_chats[GROUP] = SUPERGROUP
    with build_client(app_factory, fake, channel_id=None) as client:
        officer = token_for(client.app, "officer")
        old = subscribe_chat(client, officer, GROUP, [])
        new = subscribe_chat(client, officer, SUPERGROUP, [])
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"])
        rows = wait_for(lambda: settled(client, update["id"], 2))
        assert subscriber(client, old).state == "gone"
        assert subscriber(client, new).address == str(SUPERGROUP)

    assert sorted(d.state for d in rows) == ["delivered", "failed"]
    assert "subscriber of its own" in next(d for d in rows if d.state == "failed").last_error
    assert len(fake.state.texts(SUPERGROUP)) == 1
