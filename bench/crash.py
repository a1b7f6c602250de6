"""Duplicates after ``kill -9`` (``python -m bench.crash [--kills 10] [--targets 3000]``), #12
item 4.

Per backend, ``--kills`` rounds: ``broadcast serve`` (dispatcher included, webhook channel, lease
3 s) publishes one update to ``--targets`` webhook subscribers at a receiver on 127.0.0.1; once
a third of them arrived the process is killed with SIGKILL, started again, and left to finish.
Counted per round: arrivals before the kill, targets that arrived twice (re-sends), and whether
every target arrived. The bound: a lane gives a send's concurrency slot back only once its
outcome is recorded, so at most ``concurrency`` deliveries (16 for webhooks) can have been sent
and not recorded when the process dies: re-sends ≤ 16 per kill.

The receiver (tests/fakes/receiver.py) runs in this process, the service in a child process.
Prints a Markdown table and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import DEFAULT_POSTGRES_URL, ensure_postgres_database, isolate_environment

BOUND = 16  # channels/webhook.py: Limits(concurrency=16)


def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def fresh(backend: str, workdir: Path, postgres_url: str) -> str:
    from sqlalchemy import create_engine, text

    if backend == "sqlite":
        return f"sqlite:///{workdir}/crash.db"
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_url


def one_round(url: str, token: str, receiver, workdir: Path, targets: int) -> dict:
    import httpx

    from tests.support import ServiceProcess, auth, service_env

    env = service_env(url)
    receiver.state.received.clear()
    service = ServiceProcess(env, workdir).start()
    try:
        headers = auth(token)
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=headers,
            json={"title": "Dijkdoorbraak", "severity": "emergency"},
            timeout=60,
        ).json()
        httpx.post(
            f"{service.url}/api/v1/incidents/{incident['id']}/updates",
            headers=headers,
            json={"body": "Verlaat uw woning."},
            timeout=60,
        ).raise_for_status()
        deadline = time.monotonic() + 600
        while len(receiver.state.received) < targets // 3:
            if time.monotonic() > deadline:
                raise TimeoutError("the fan-out did not start")
            time.sleep(0.002)
    finally:
        service.kill()
    before = len(receiver.state.received)
    service = ServiceProcess(env, workdir).start()
    try:
        deadline = time.monotonic() + 900
        while len({r.path for r in receiver.state.received}) < targets:
            if time.monotonic() > deadline:
                raise TimeoutError("the restarted service did not finish")
            time.sleep(0.1)
        time.sleep(1.0)  # a late re-send still counts
    finally:
        service.stop()
    paths = Counter(r.path for r in receiver.state.received)
    return {
        "before": before,
        "resent": sum(n - 1 for n in paths.values()),
        "complete": set(paths) == {f"/r/{n}" for n in range(targets)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    # A database of its own: its schema is dropped, and other benchmarks may use "bench".
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL + "_crash")
    args = parser.parse_args()
    isolate_environment()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        ensure_postgres_database(args.postgres_url)

    from tests.conftest import WEBHOOK_SECRET
    from tests.fakes.receiver import receiver_app
    from tests.fakes.server import FakeServer
    from tests.support import seed

    print(f"load average before: {load()} (cores: {os.cpu_count()})")
    rows = []
    app = receiver_app(WEBHOOK_SECRET)
    with FakeServer(app) as receiver, tempfile.TemporaryDirectory() as folder:
        receiver.state = app.state.receiver
        for backend in backends:
            workdir = Path(folder) / backend
            workdir.mkdir()
            url = fresh(backend, workdir, args.postgres_url)
            token = seed(url, receiver.url, args.targets)
            for kill in range(1, args.kills + 1):
                result = one_round(url, token, receiver, workdir, args.targets)
                rows.append((backend, kill, result))
                print(
                    f"  {backend} kill {kill}: {result['before']} arrived before the kill, "
                    f"{result['resent']} re-sent, complete: {result['complete']}",
                    flush=True,
                )
    print("\n| Backend | kills | re-sends per kill (min / median / max) | total | bound | all")
    print("|---|---|---|---|---|---|")
    for backend in backends:
        mine = sorted(r["resent"] for b, _, r in rows if b == backend)
        complete = all(r["complete"] for b, _, r in rows if b == backend)
        print(
            f"| {backend} | {len(mine)} | {mine[0]} / {mine[len(mine) // 2]} / {mine[-1]} "
            f"| {sum(mine)} | ≤ {BOUND} per kill: {'met' if mine[-1] <= BOUND else 'MISSED'} "
            f"| {'every target' if complete else 'LOST SOME'} |"
        )
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
