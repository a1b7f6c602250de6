"""``kill -9`` while residents write in by Telegram and SMS, then a restart and every message
sent again: each message the provider got a 2xx for is in the inbox, and each message is there
exactly once however often it came."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import col, func, select

from broadcast.db import Database
from broadcast.inbound.models import InboundMessage
from broadcast.questions.models import Question
from tests.conftest import FIXTURES, ROOT
from tests.fakes.server import SlidingWindow
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import signed_inbound_sms
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
PER_CHANNEL = 100
PUBLIC = "https://crisis.gemeente.example"  # what Twilio signs; the port does not matter
SECRET = "telegram-webhook-secret"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
SMS_PATH = "/webhooks/twilio/sms"


def service_env(database_url: str, fake: FakeTelegram) -> dict[str, str]:
    return {
        "BROADCAST_DATABASE_URL": database_url,
        "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
        "BROADCAST_LOG_JSON": "false",
        "BROADCAST_PUBLIC_URL": PUBLIC,
        "BROADCAST_LEASE_SECONDS": "3",  # a dead process's claims run out soon
        "BROADCAST_CHANNELS_ENABLED": "platform,telegram,sms",
        "BROADCAST_TELEGRAM_BOT_TOKEN": fake.token,
        "BROADCAST_TELEGRAM_API_URL": fake.url,
        "BROADCAST_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "BROADCAST_TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
        "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "BROADCAST_TWILIO_FROM": "+3197010000000",
        "PYTHONPATH": str(ROOT),
    }


def telegram_messages() -> list[tuple[str, Callable[[str], httpx.Response]]]:
    template = json.loads(
        (FIXTURES / "telegram" / "update_message_text_private_teloxide.json").read_text()
    )
    messages = []
    for n in range(PER_CHANNEL):
        data = copy.deepcopy(template)
        text = f"Telegramvraag {n}: staat de dijk nog?"
        data["update_id"] = 900_000 + n
        data["message"] |= {"message_id": n + 1, "text": text}
        data["message"]["chat"]["id"] = data["message"]["from"]["id"] = 7_000_000 + n

        def send(url: str, data=data) -> httpx.Response:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            return httpx.post(f"{url}/webhooks/telegram", json=data, headers=headers, timeout=30)

        messages.append((text, send))
    return messages


def sms_messages() -> list[tuple[str, Callable[[str], httpx.Response]]]:
    messages = []
    for n in range(PER_CHANNEL):
        text = f"Sms-vraag {n}: is er drinkwater?"
        params, signature = signed_inbound_sms(
            PUBLIC + SMS_PATH, f"+316120{n:05d}", text, AUTH_TOKEN
        )

        def send(url: str, params=params, signature=signature) -> httpx.Response:
            headers = {"X-Twilio-Signature": signature}
            return httpx.post(f"{url}{SMS_PATH}", data=params, headers=headers, timeout=30)

        messages.append((text, send))
    return messages


def inbox(database_url: str) -> Counter:
    db = Database(database_url)
    try:
        with db.session_scope() as session:
            return Counter(session.exec(select(Question.text)))
    finally:
        db.dispose()


def unhandled(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.session_scope() as session:
            query = select(func.count()).where(col(InboundMessage.handled_at).is_(None))
            return session.exec(query).one()
    finally:
        db.dispose()


def send_all(messages, url_of: Callable[[], str], acknowledged: list[str]) -> None:
    """Like the providers: many at once; a 2xx is an acknowledgement, anything else not."""
    lock = threading.Lock()

    def one(message) -> None:
        text, send = message
        try:
            answer = send(url_of())
        except httpx.HTTPError:
            return
        if answer.is_success:
            with lock:
                acknowledged.append(text)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(one, messages))


@pytest.mark.slow
def test_kill_while_residents_write_in_then_restart_and_resend(database_url, tmp_path):
    with FakeTelegram() as fake:
        fake.state.chat_limit = SlidingWindow(100, 1.0)
        env = service_env(database_url, fake)
        messages = [
            m for pair in zip(telegram_messages(), sms_messages(), strict=True) for m in pair
        ]
        service = ServiceProcess(env, tmp_path, "--no-dispatch").start()
        acknowledged: list[str] = []
        sender = threading.Thread(
            target=send_all, args=(messages, lambda: service.url, acknowledged)
        )
        sender.start()
        wait_for(lambda: len(acknowledged) >= len(messages) // 3, timeout=120, interval=0.005)
        service.kill()
        sender.join()
        assert len(acknowledged) < len(messages), "the crash must happen while they write in"
        print(f"acknowledged {len(acknowledged)}, left unhandled {unhandled(database_url)}")

        service = ServiceProcess(env, tmp_path, "--no-dispatch").start()
        try:
            wait_for(lambda: set(acknowledged) <= set(inbox(database_url)), timeout=60)
            resent: list[str] = []
            send_all(messages, lambda: service.url, resent)  # unacknowledged ones, and replays
            assert sorted(resent) == sorted(text for text, _ in messages)
            wait_for(lambda: unhandled(database_url) == 0, timeout=60)
        finally:
            service.stop()
    assert inbox(database_url) == Counter(text for text, _ in messages)
