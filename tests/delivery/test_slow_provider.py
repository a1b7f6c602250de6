"""One slow provider never slows the others (#12 item 6).

The webhook receiver holds every call open (far longer than the 10 s of a slow provider, until
the test lets go), so the webhook lane's every slot is taken by a call that has not answered.
Meanwhile the Telegram lane sends its whole broadcast and the platform announces the update:
asserted by order (all of Telegram delivered while no webhook call has been answered), never
by durations.
"""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery.models import Delivery
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    FIRST_CHAT,
    add_residents,
    auth,
    new_incident,
    post_update,
    settled,
    token_for,
    wait_for,
)

CHATS, PARTNERS = 60, 20
WEBHOOK_CONCURRENCY = 16  # channels/webhook.py
HELD_SECONDS = 600.0  # a call is answered when the test releases it (or after this, never here)


def states(client, update_id: int, channel: str) -> Counter:
    with client.app.state.db.session_scope() as session:
        rows = session.exec(
            select(Delivery.state).where(
                Delivery.update_id == update_id, Delivery.channel == channel
            )
        ).all()
    return Counter(rows)


def test_a_webhook_receiver_that_holds_every_call_does_not_slow_telegram(app_factory, receiver):
    from channels.platform import PlatformChannel
    from channels.telegram import TelegramChannel
    from channels.webhook import WebhookChannel

    receiver.state.slow_down(HELD_SECONDS)
    with FakeTelegram() as tg:
        app = app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
            channels={
                "webhook": {
                    "secret": WEBHOOK_SECRET,
                    "allow_private_addresses": True,  # the receiver is on 127.0.0.1
                    "timeout_seconds": HELD_SECONDS,  # the calls stay open: no time-outs
                },
                "telegram": {"bot_token": tg.token, "api_url": tg.url},
            },
        )
        try:
            with TestClient(app) as client:
                officer = token_for(client.app, "officer")
                add_residents(client, CHATS)
                for n in range(PARTNERS):
                    answer = client.post(
                        "/api/v1/subscribers",
                        json={"channel": "webhook", "address": f"{receiver.url}/r/{n}"},
                        headers=auth(officer),
                    )
                    assert answer.status_code == 201, answer.text
                incident = new_incident(client, officer)
                update = post_update(client, officer, incident["id"], body="Dijk houdt stand.")

                wait_for(lambda: receiver.state.opened >= 1, timeout=120)  # the slow calls began
                delivered = wait_for(lambda: settled(client, update["id"], CHATS), timeout=240)
                platform = states(client, update["id"], "platform")

                # Telegram's whole broadcast is out, and the platform's announcement, while
                # not one webhook call has been answered yet.
                assert receiver.state.received == []
                assert 1 <= receiver.state.opened <= WEBHOOK_CONCURRENCY
                assert {d.state for d in delivered} == {"delivered"}
                sent_to = Counter(m.chat_id for m in tg.state.sent)
                assert sent_to == Counter(FIRST_CHAT + n for n in range(CHATS))
                assert tg.state.rate_limited == []
                assert platform and set(platform) <= {"sent", "delivered"}
                assert states(client, update["id"], "webhook")["sending"] >= 1

                receiver.state.release()  # the slow provider answers; it is sent everything
                wait_for(
                    lambda: states(client, update["id"], "webhook")["delivered"] == PARTNERS,
                    timeout=240,
                )
        finally:
            receiver.state.release()
    paths = Counter(r.path for r in receiver.state.received)
    assert paths == Counter(f"/r/{n}" for n in range(PARTNERS))
