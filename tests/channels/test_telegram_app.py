"""Telegram through the whole service: the API publishes, the dispatcher paces, PTB talks real
HTTP to the Bot API stand-in, and the outcomes come back into the outbox."""

from __future__ import annotations

import pytest

from broadcast.subscribers.models import Subscriber
from channels.platform import PlatformChannel
from channels.telegram import TelegramChannel
from channels.webhook import WebhookChannel
from tests.fakes.server import HeldFromFirstLook
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    TELEGRAM_CHANNEL,
    auth,
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


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def client(app_factory, fake):
    with build_client(app_factory, fake) as test_client:
        yield test_client


@pytest.fixture
def officer(client) -> str:
    return token_for(client.app, "officer")


def test_an_update_reaches_the_channel_and_the_residents_of_its_area(client, officer, fake):
    subscribe_chat(client, officer, 1001, ["plasmolen"])
    subscribe_chat(client, officer, 1002, ["molenhoek"])
    subscribe_chat(client, officer, 1003, [], language="en")  # the whole municipality
    incident = new_incident(client, officer, areas=["plasmolen"])
    update = post_update(client, officer, incident["id"], body={"nl": "Dijk < 1 m", "en": "Dyke"})

    rows = wait_for(lambda: settled(client, update["id"], 3))
    assert {d.state for d in rows} == {"delivered"}
    assert sorted(str(m.chat_id) for m in fake.state.sent) == ["1001", "1003", TELEGRAM_CHANNEL]
    assert fake.state.messages[(1001, 1)]["text"].endswith("Dijk < 1 m")
    assert fake.state.messages[(1003, 1)]["text"].endswith("Dyke")
    channel_row = next(d for d in rows if d.target == TELEGRAM_CHANNEL)
    assert channel_row.provider_id.endswith(":1")
    counts = client.get(f"/api/v1/updates/{update['id']}/deliveries", headers=auth(officer))
    assert counts.json()["telegram"] == {"delivered": 3}


def test_a_resident_who_blocked_the_bot_is_marked_gone(client, officer, fake):
    gone = subscribe_chat(client, officer, 1001, [])
    subscribe_chat(client, officer, 1002, [])
    fake.state.blocked_chats.add(1001)
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])

    rows = wait_for(lambda: settled(client, update["id"], 3))
    failed = [d for d in rows if d.state == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert "blocked" in failed[0].last_error
    with client.app.state.db.session_scope() as session:
        assert session.get(Subscriber, gone).state == "gone"
    second = post_update(client, officer, incident["id"], body="Tweede bericht")
    assert len(wait_for(lambda: settled(client, second["id"], 2))) == 2  # not to 1001 again


def test_flood_control_is_waited_out_and_the_message_arrives(client, officer, fake):
    subscribe_chat(client, officer, 1001, [])
    incident = new_incident(client, officer)
    # Another message went to this chat just before ours, however late ours comes.
    fake.state.chat_limit = HeldFromFirstLook(1, 1.0, key=1001)
    update = post_update(client, officer, incident["id"])

    rows = wait_for(lambda: settled(client, update["id"], 2))
    resident = next(d for d in rows if d.target.startswith("s"))
    assert resident.state == "delivered" and resident.attempts == 2
    # One refusal only: a second send before the window let it would have been refused again,
    # so the message waited as Telegram asked.
    [refused] = fake.state.rate_limited
    assert refused["chat_id"] == 1001 and refused["retry_after"] == 1


def test_a_correction_edits_the_channel_post_and_replies_to_it(client, officer, fake):
    subscribe_chat(client, officer, 1001, [])
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"], body="Piek vrijdag 06:00.")
    wait_for(lambda: settled(client, original["id"], 2))

    response = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "Piek zaterdag 06:00."},
        headers=auth(officer),
    )
    assert response.status_code == 201, response.text
    rows = wait_for(lambda: settled(client, response.json()["id"], 2))

    assert {d.state for d in rows} == {"delivered"}
    assert fake.state.rate_limited == []  # the correction waited for the chat's interval
    [edit] = fake.state.edits
    assert (edit.chat_id, edit.message_id) == (TELEGRAM_CHANNEL, 1)
    post = fake.state.messages[(TELEGRAM_CHANNEL, 1)]
    assert post["text"].startswith("Gecorrigeerd (zie het bericht hieronder)\n")
    assert any(e["type"] == "strikethrough" for e in post["entities"])
    replies = {m.chat_id: m for m in fake.state.sent if m.reply_to_message_id}
    on_channel = replies[TELEGRAM_CHANNEL]
    assert on_channel.reply_to_message_id == 1 and "Piek zaterdag" in on_channel.text
    assert replies[1001].reply_to_message_id == 1  # the resident's copy is answered, not edited


def test_without_a_bot_token_the_channel_is_off_and_says_why(app_factory, fake):
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
        channels=telegram_settings(fake, bot_token=""),
    )
    assert "telegram" not in app.state.channels
    assert "BROADCAST_TELEGRAM_BOT_TOKEN" in app.state.channels.disabled["telegram"]
