"""Channel benchmarks against the provider stand-ins (``python -m bench.channels [--quick]``).

(a) Sustained rate of our dispatcher against each channel's limit: Telegram DMs (30/s), SMS and
    WhatsApp through Twilio (10/s per account), Mastodon statuses (300 per 5 minutes = 1/s).
(b) 2,000 Telegram DMs: our dispatcher against a plain loop over python-telegram-bot with its
    ``AIORateLimiter`` (what a developer would otherwise write), each against a fresh stand-in
    with the same limits, in the same run: wall time, achieved rate, 429s, CPU.

Every stand-in runs in a child process of its own (``tests.fakes.process``: its CPU is not
counted, and it is not stalled by ours), on 127.0.0.1, and records when it answered what. Our
side is the whole service in this process (``create_app`` on a SQLite file, dispatcher
included); CPU is this process's user + system time during the broadcast. Self-contained:
imports only the service and the stand-ins in ``tests/fakes``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.process import StandInProcess

ROOT = Path(__file__).resolve().parents[1]
SEND_PATHS = {
    "telegram": ("/sendMessage",),
    "sms": ("/Messages.json",),
    "whatsapp": ("/Messages.json",),
    "mastodon": ("/api/v1/statuses",),
}
LIMITS = {"telegram": 30.0, "sms": 10.0, "whatsapp": 10.0, "mastodon": 1.0}  # the stand-ins'
SENDER = "+3197010000000"


# --- figures from a stand-in's request log --------------------------------------------------


@dataclass
class Figures:
    name: str
    sent: int
    refused: int  # 429 answers
    seconds: float  # first accepted send to last
    wall: float  # from the start of the broadcast until everything went out
    cpu: float | None = None

    @property
    def rate(self) -> float:
        return (self.sent - 1) / self.seconds if self.sent > 1 and self.seconds else 0.0


def figures(name: str, fake, channel: str, wall: float, cpu: float | None = None) -> Figures:
    sends = [e for e in fake.log() if e[1].endswith(SEND_PATHS[channel])]
    accepted = sorted(t for t, _, status in sends if status in (200, 201))
    refused = sum(1 for *_, status in sends if status == 429)
    seconds = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    return Figures(name, len(accepted), refused, seconds, wall, cpu)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- our dispatcher ---------------------------------------------------------------------------


@contextmanager
def service(channels: dict, classes: list):
    """The whole service on a fresh SQLite file, dispatcher running, with an officer token."""
    from fastapi.testclient import TestClient

    from broadcast.app import create_app
    from broadcast.auth.models import Role
    from broadcast.auth.service import add_user
    from broadcast.settings import Settings
    from channels.platform import PlatformChannel

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/bench.db",
            areas_file=ROOT / "config" / "areas.toml",
            log_level="WARNING",
            log_json=False,
            channels=channels,
        )
        with TestClient(create_app(settings, channel_classes=[PlatformChannel, *classes])) as c:
            with c.app.state.db.session_scope() as session:
                _, token = add_user(session, name="bench", role=Role.officer, password="x" * 12)
            c.headers["Authorization"] = f"Bearer {token}"
            yield c


def add_subscribers(client, channel: str, addresses: list[str]) -> None:
    from broadcast.common import utcnow
    from broadcast.subscribers.models import Subscriber, SubscriberState

    with client.app.state.db.session_scope() as session:
        session.add_all(
            Subscriber(
                channel=channel, address=a, state=SubscriberState.active, consent_at=utcnow()
            )
            for a in addresses
        )


def publish(client, count: int = 1) -> None:
    incident = client.post(
        "/api/v1/incidents",
        json={"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook"]},
    ).json()
    for n in range(count):
        answer = client.post(
            f"/api/v1/incidents/{incident['id']}/updates", json={"body": f"Peil {n}: 14,10 m NAP."}
        )
        assert answer.status_code == 201, answer.text


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the broadcast did not finish in time")
        time.sleep(0.2)


def finished(client, channel: str, expected: int) -> bool:
    from sqlmodel import func, select

    from broadcast.delivery.models import Delivery

    query = select(func.count()).where(
        Delivery.channel == channel, Delivery.state.in_(["sent", "delivered", "failed", "dead"])
    )
    with client.app.state.db.session_scope() as session:
        return session.exec(query).one() >= expected


def ours(channel: str, count: int, *, label: str = "ours") -> Figures:
    from channels.mastodon import MastodonChannel
    from channels.sms import SmsChannel, WhatsAppChannel
    from channels.telegram import TelegramChannel

    kind = {"sms": "twilio", "whatsapp": "twilio"}.get(channel, channel)
    with StandInProcess(kind) as fake:
        info = fake.info
        if channel == "telegram":
            config = {"bot_token": info["token"], "api_url": fake.url}
            classes, addresses = [TelegramChannel], [str(5_000_000 + n) for n in range(count)]
        elif channel == "mastodon":
            config = {"url": fake.url, "token": info["token"]}
            classes, addresses = [MastodonChannel], []
        else:
            config = {"account_sid": info["account_sid"], "auth_token": info["auth_token"]}
            config |= {"from": SENDER, "whatsapp_from": SENDER, "api_url": fake.url}
            config |= {"status_callback": False}
            prefix = "whatsapp:" if channel == "whatsapp" else ""
            classes = [SmsChannel, WhatsAppChannel]
            addresses = [f"{prefix}+3161{n:07d}" for n in range(count)]
        with service({channel: config}, classes) as client:
            add_subscribers(client, channel, addresses)
            cpu, start = cpu_seconds(), time.monotonic()
            publish(client, count if channel == "mastodon" else 1)
            wait_until(lambda: finished(client, channel, count), count / LIMITS[channel] + 120)
            wall, cpu = time.monotonic() - start, cpu_seconds() - cpu
        return figures(label, fake, channel, wall, cpu)


# --- the baseline: a plain loop over python-telegram-bot with AIORateLimiter -----------------


def baseline(count: int) -> Figures:
    from telegram.error import TelegramError
    from telegram.ext import AIORateLimiter, ExtBot

    async def broadcast(fake: StandInProcess) -> int:
        # AIORateLimiter's defaults (30 per second overall) and a few retries after a 429,
        # which it waits out for the whole bot; without retries each 429 would lose a message.
        limiter = AIORateLimiter(max_retries=3)
        bot = ExtBot(fake.token, base_url=f"{fake.url}/bot", rate_limiter=limiter)
        lost = 0
        async with bot:
            for n in range(count):
                try:
                    await bot.send_message(5_000_000 + n, "Peil 0: 14,10 m NAP.")
                except TelegramError:
                    lost += 1
        return lost

    with StandInProcess("telegram") as fake:
        cpu, start = cpu_seconds(), time.monotonic()
        lost = asyncio.run(broadcast(fake))
        wall, cpu = time.monotonic() - start, cpu_seconds() - cpu
        result = figures("PTB + AIORateLimiter loop", fake, "telegram", wall, cpu)
    if lost:
        result.name += f" ({lost} lost)"
    return result


# --- report -----------------------------------------------------------------------------------


def report(title: str, rows: list[tuple[str, Figures, float]]) -> None:
    print(f"\n{title}")
    head = f"{'':28} {'sent':>6} {'429s':>5} {'wall s':>7} {'rate/s':>7} {'limit':>6} {'%':>5}"
    print(head + f" {'CPU s':>6}")
    for label, f, limit in rows:
        cpu = f"{f.cpu:6.1f}" if f.cpu is not None else "     -"
        print(
            f"{label:28} {f.sent:6d} {f.refused:5d} {f.wall:7.1f} {f.rate:7.2f} {limit:6.1f} "
            f"{100 * f.rate / limit:5.1f} {cpu}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--dms", type=int, default=2000, help="DMs in the comparison (b)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    sizes = {"telegram": 1000, "sms": 300, "whatsapp": 300, "mastodon": 30}
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    sustained = [
        (channel, ours(channel, max(3, int(n * scale))), LIMITS[channel])
        for channel, n in sizes.items()
    ]
    report("(a) sustained rate against each channel's limit (our dispatcher)", sustained)
    dms = max(30, int(args.dms * scale))
    ours_dms = ours("telegram", dms, label="our dispatcher")
    loop = baseline(dms)
    report(
        f"(b) {dms} Telegram DMs, same stand-in and limits (30/s, 1/s per chat)",
        [(ours_dms.name, ours_dms, 30.0), (loop.name, loop, 30.0)],
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
