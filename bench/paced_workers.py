"""Paced channels with several workers on PostgreSQL (``python -m bench.paced_workers``), #12
items 1 and 10.

For 1, 2 and 3 ``broadcast worker`` processes (production settings) on a database of its own:
one update to ``--sms`` SMS subscribers (Twilio stand-in, 10/s per account) and ``--chats``
Telegram subscribers (Telegram stand-in, 30/s per bot, 1/s per chat). Each stand-in runs in a
child process of its own with the provider's published limits and records when it answered what:
the rate is its accepted sends over the time from the first to the last, the refusals its 429s.
Then, with two workers or more, a second update to the SMS subscribers: once a third has arrived
the worker owning the SMS lane is killed with SIGKILL; the failover time is from the kill until
the stand-in accepts the next SMS (both clocks are this machine's wall clock).

The officers' side (publishing) runs in this process without a dispatcher. Prints a Markdown
table with the machine and the load average; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    ensure_postgres_database,
    fresh_database,
    isolate_environment,
    load_average,
    machine_facts,
)

SENDER = "+3197010000000"
DECLARED = {"sms": 10.0, "telegram": 30.0}  # what the adapters declare (the providers' limits)
SEND_PATHS = {"sms": "/Messages.json", "telegram": "/sendMessage"}


def channel_settings(twilio, telegram) -> dict:
    return {
        "sms": {
            "account_sid": twilio.info["account_sid"],
            "auth_token": twilio.info["auth_token"],
            "from": SENDER,
            "api_url": twilio.url,
            "status_callback": False,
        },
        "telegram": {"bot_token": telegram.token, "api_url": telegram.url},
    }


def add_subscribers(url: str, sms: int, chats: int) -> None:
    from sqlalchemy import create_engine, insert

    from broadcast.common import utcnow
    from broadcast.subscribers.models import Subscriber

    rows = [("sms", f"+3161{n:07d}") for n in range(sms)]
    rows += [("telegram", str(5_000_000 + n)) for n in range(chats)]
    now = utcnow()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Subscriber.__table__),
            [
                {
                    "channel": channel,
                    "address": address,
                    "language": "nl",
                    "min_severity": "info",
                    "state": "active",
                    "created_at": now,
                    "consent_at": now,
                }
                for channel, address in rows
            ],
        )
    engine.dispose()


def accepted(fake, channel: str, since: float = 0.0) -> list[float]:
    return sorted(
        at
        for at, path, status in fake.log()
        if path.endswith(SEND_PATHS[channel]) and status in (200, 201) and at >= since
    )


def refused(fake, channel: str) -> int:
    return sum(
        1 for _, path, status in fake.log() if path.endswith(SEND_PATHS[channel]) and status == 429
    )


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def owner_of(workers: dict, channel: str) -> str | None:
    took, lost = f"took the {channel} lane", f"lost the {channel} lane"
    for name, worker in workers.items():
        log = worker.log()
        if worker.running() and log.rfind(took) > log.rfind(lost):
            return name
    return None


def one_run(count: int, args, folder: Path) -> dict:
    from fastapi.testclient import TestClient

    from broadcast.app import create_app
    from broadcast.settings import Settings
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel
    from channels.telegram import TelegramChannel
    from tests.fakes.process import StandInProcess
    from tests.support import CliProcess, auth, token_for

    url = fresh_database("postgresql", folder, "paced", args.postgres_url)
    add_subscribers(url, args.sms, args.chats)
    with StandInProcess("twilio") as twilio, StandInProcess("telegram") as telegram:
        channels = channel_settings(twilio, telegram)
        env = {
            "BROADCAST_DATABASE_URL": url,
            "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
            "BROADCAST_MEDIA_DIR": str(folder / "media"),
            "BROADCAST_LOG_JSON": "false",
            "BROADCAST_CHANNELS_ENABLED": "sms,telegram",
            "BROADCAST_CHANNELS": json.dumps(channels),
            "BROADCAST_CONFIG": str(ROOT / "bench" / "no-such-config.toml"),
            "PYTHONPATH": str(ROOT),
        }
        workers = {
            f"worker-{n}": CliProcess(
                f"run{count}-worker-{n}", ["broadcast", "worker"], env, folder
            )
            for n in range(1, count + 1)
        }
        settings = Settings(
            database_url=url,
            areas_file=ROOT / "config" / "areas.toml",
            media_dir=folder / "media",
            log_level="WARNING",
            log_json=False,
            channels_enabled=["sms", "telegram"],
            channels=channels,
        )
        app = create_app(
            settings,
            dispatch=False,
            schedule=False,
            channel_classes=[PlatformChannel, SmsChannel, TelegramChannel],
        )
        try:
            with TestClient(app) as client:
                client.headers.update(auth(token_for(app, "officer")))
                for worker in workers.values():
                    wait_until(worker.ready, 300, f"{worker.name} did not start")
                wait_until(
                    lambda: owner_of(workers, "sms") and owner_of(workers, "telegram"),
                    120,
                    "no lane owners",
                )
                incident = client.post(
                    "/api/v1/incidents", json={"title": "Hoogwater Maas", "severity": "warning"}
                ).json()
                path = f"/api/v1/incidents/{incident['id']}/updates"
                client.post(path, json={"body": "Zandzakken bij de kazerne."}).raise_for_status()
                total = args.sms + args.chats
                wait_until(
                    lambda: (
                        len(accepted(twilio, "sms")) >= args.sms
                        and len(accepted(telegram, "telegram")) >= args.chats
                    ),
                    total / 5 + 300,
                    "the fan-out did not finish",
                )
                result = {
                    "workers": count,
                    "sms": accepted(twilio, "sms"),
                    "telegram": accepted(telegram, "telegram"),
                    "sms_refused": refused(twilio, "sms"),
                    "telegram_refused": refused(telegram, "telegram"),
                    "failover": None,
                }
                if count >= 2:
                    result |= failover(client, path, workers, twilio, args.sms)
                    result["sms_refused"] = refused(twilio, "sms")
        finally:
            for worker in workers.values():
                worker.stop()
    return result


def failover(client, path: str, workers: dict, twilio, sms: int) -> dict:
    """A second update to the SMS subscribers; the SMS lane's owner is killed a third in."""
    before = len(accepted(twilio, "sms"))
    owner = owner_of(workers, "sms")
    client.post(path, json={"body": "Verlaat uw woning via de Rijksweg."}).raise_for_status()
    wait_until(lambda: len(accepted(twilio, "sms")) >= before + sms // 3, 600, "no SMS went out")
    killed_at = time.time()
    workers[owner].kill()
    wait_until(lambda: accepted(twilio, "sms", since=killed_at), 120, "nobody took the SMS lane")
    first_after = accepted(twilio, "sms", since=killed_at)[0]
    wait_until(lambda: len({to for to in twilio.recipients()[before:]}) >= sms, 600, "SMS lost")
    resent = sum(n - 1 for n in Counter(twilio.recipients()[before:]).values())
    return {
        "failover": first_after - killed_at,
        "resent": resent,
        "successor": owner_of(workers, "sms"),
    }


def report(rows: list[dict], args, facts: dict, load_before: str, load_after: str) -> str:
    lines = [
        "| workers | SMS sent | SMS rate (declared 10/s) | SMS 429s | Telegram sent | "
        "Telegram rate (declared 30/s) | Telegram 429s | failover after kill -9 of the SMS "
        "owner | re-sent after it |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        sms, tg = rate(row["sms"][: args.sms]), rate(row["telegram"])
        failover = f"{row['failover']:.2f} s" if row["failover"] is not None else "–"
        resent = str(row.get("resent", "–"))
        lines.append(
            f"| {row['workers']} | {len(row['sms'])} | {sms:.2f}/s "
            f"({sms / DECLARED['sms']:.1%}) | {row['sms_refused']} | {len(row['telegram'])} | "
            f"{tg:.2f}/s ({tg / DECLARED['telegram']:.1%}) | {row['telegram_refused']} | "
            f"{failover} | {resent} |"
        )
    lines += ["", *(f"- {k}: {v}" for k, v in facts.items())]
    lines.append(f"- Load average (1 min): {load_before} before, {load_after} after")
    return "\n".join(lines)


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sms", type=int, default=300)
    parser.add_argument("--chats", type=int, default=600)
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL + "_paced")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    isolate_environment()
    ensure_postgres_database(args.postgres_url)
    load_before, facts = load_average(), machine_facts(args.postgres_url)  # before the drop
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for count in (int(n) for n in args.workers.split(",")):
                row = one_run(count, args, Path(folder))
                rows.append(row)
                print(
                    f"  {count} worker(s): {rate(row['sms'][: args.sms]):.2f} SMS/s, "
                    f"{rate(row['telegram']):.2f} Telegram/s, 429s {row['sms_refused']} + "
                    f"{row['telegram_refused']}, failover {row['failover']}",
                    flush=True,
                )
    finally:
        drop_database(args.postgres_url)
    table = report(rows, args, facts, load_before, load_average())
    print(table)
    if args.output:
        args.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
