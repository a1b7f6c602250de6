"""Telegram through the whole service: the API publishes, the dispatcher paces, PTB talks real
HTTP to the Bot API stand-in, and the outcomes come back into the outbox."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery.models import Delivery
from broadcast.subscribers.models import Subscriber
from channels.platform import PlatformChannel
from channels.telegram import TelegramChannel
from channels.webhook import WebhookChannel
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.telegram import FakeTelegram
from tests.support import auth, new_incident, post_update, token_for, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
CHANNEL = "@gemeente"
SECRET = "s3cret"


def telegram_settings(fake: FakeTelegram, **values) -> dict:
    settings = {"bot_token": fake.token, "api_url": fake.url, "channel_id": CHANNEL}
    return {"webhook": {"secret": WEBHOOK_SECRET}, "telegram": settings | values}


def build_client(app_factory, fake: FakeTelegram, **values) -> TestClient:
    return TestClient(
        app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
            channels=telegram_settings(fake, **({"webhook_secret": SECRET} | values)),
        )
    )


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


def subscribe(client, officer: str, chat_id: int, areas: list[str], language: str = "nl") -> int:
    body = {"channel": "telegram", "address": str(chat_id), "areas": areas, "language": language}
    response = client.post("/api/v1/subscribers", json=body, headers=auth(officer))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def telegram_deliveries(client, update_id: int | None = None) -> list[Delivery]:
    query = select(Delivery).where(Delivery.channel == "telegram")
    if update_id is not None:
        query = query.where(Delivery.update_id == update_id)
    with client.app.state.db.session_scope() as session:
        return list(session.exec(query.order_by(Delivery.id)))


def settled(client, update_id: int, count: int) -> list[Delivery]:
    rows = telegram_deliveries(client, update_id)
    done = [d for d in rows if d.state in ("delivered", "failed", "dead")]
    return rows if len(rows) == count and len(done) == count else []


def test_an_update_reaches_the_channel_and_the_residents_of_its_area(client, officer, fake):
    subscribe(client, officer, 1001, ["plasmolen"])
    subscribe(client, officer, 1002, ["molenhoek"])
    subscribe(client, officer, 1003, [], language="en")  # the whole municipality
    incident = new_incident(client, officer, areas=["plasmolen"])
    update = post_update(client, officer, incident["id"], body={"nl": "Dijk < 1 m", "en": "Dyke"})

    rows = wait_for(lambda: settled(client, update["id"], 3))
    assert {d.state for d in rows} == {"delivered"}
    assert sorted(str(m.chat_id) for m in fake.state.sent) == ["1001", "1003", CHANNEL]
    assert fake.state.messages[(1001, 1)]["text"].endswith("Dijk < 1 m")
    assert fake.state.messages[(1003, 1)]["text"].endswith("Dyke")
    channel_row = next(d for d in rows if d.target == CHANNEL)
    assert channel_row.provider_id.endswith(":1")
    counts = client.get(f"/api/v1/updates/{update['id']}/deliveries", headers=auth(officer))
    assert counts.json()["telegram"] == {"delivered": 3}


def test_a_resident_who_blocked_the_bot_is_marked_gone(client, officer, fake):
    gone = subscribe(client, officer, 1001, [])
    subscribe(client, officer, 1002, [])
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
    subscribe(client, officer, 1001, [])
    incident = new_incident(client, officer)
    fake.state.chat_limit.record(1001)  # another message went to this chat a moment ago
    update = post_update(client, officer, incident["id"])

    rows = wait_for(lambda: settled(client, update["id"], 2))
    resident = next(d for d in rows if d.target.startswith("s"))
    assert resident.state == "delivered" and resident.attempts == 2
    [refused] = fake.state.rate_limited
    assert refused["chat_id"] == 1001 and refused["retry_after"] == 1
    accepted = next(m for m in fake.state.sent if m.chat_id == 1001)
    assert accepted.at - refused["at"] >= 0.95  # waited as Telegram asked


def test_a_correction_edits_the_channel_post_and_replies_to_it(client, officer, fake):
    subscribe(client, officer, 1001, [])
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
    assert (edit.chat_id, edit.message_id) == (CHANNEL, 1)
    post = fake.state.messages[(CHANNEL, 1)]
    assert post["text"].startswith("Gecorrigeerd (zie het bericht hieronder)\n")
    assert any(e["type"] == "strikethrough" for e in post["entities"])
    replies = {m.chat_id: m for m in fake.state.sent if m.reply_to_message_id}
    assert replies[CHANNEL].reply_to_message_id == 1 and "Piek zaterdag" in replies[CHANNEL].text
    assert replies[1001].reply_to_message_id == 1  # the resident's copy is answered, not edited


def test_without_a_bot_token_the_channel_is_off_and_says_why(app_factory, fake):
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
        channels=telegram_settings(fake, bot_token=""),
    )
    assert "telegram" not in app.state.channels
    assert "BROADCAST_TELEGRAM_BOT_TOKEN" in app.state.channels.disabled["telegram"]
