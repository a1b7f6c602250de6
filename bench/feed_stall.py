"""Does one large feed stall the server? ``/healthz`` latency while one huge feed is polled.

    python -m bench.feed_stall [--entries 45000] [--backend sqlite|postgresql|both]
                               [--postgres-url URL] [--output F]

The service (``create_app``, scheduler and dispatcher on) runs under uvicorn in its own process,
as in production; the feed server is another process serving one RSS gauge feed of ``--entries``
compact items (about 4.9 MB for 45,000). This process asks ``POST /api/v1/feeds/{id}/poll`` and,
meanwhile, probes ``/healthz`` (a database round trip) and ``/no-such-page`` (a 404 answered on the
event loop alone, no database) back to back from two threads, each request on its own connection
so a slow one is not hidden behind a kept-alive one. Every poll starts on a fresh database.

Rounds, in the same run and on the same machine:
1. idle: no poll, the probes alone (the floor);
2. before: every entry kept (``feed_max_entries=1_000_000``) and parsed in the polling thread
   (``feed_parse_workers=0``), as the service did before;
3. and 4. one of the two changes alone;
5. after: the defaults (the newest ``feed_max_entries`` kept, parsed in a worker process).
Figures: the poll's wall time, readings stored, and p50 / p99 / max latency of each probe.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    HOST,
    SPAWN,
    bench_settings,
    database_arguments,
    fresh_database,
    load_average,
    machine_facts,
    percentile,
    prepare,
    start_server,
)

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_feed_stall"


# --- the feed server and the service, each in its own process ----------------------------------


def _feed_main(ports, entries: int) -> None:

    from tests.fakes.feeds import large_rss

    body = large_rss(entries)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        headers = [
            (b"content-type", b"application/rss+xml"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    _serve(app, ports)


def _service_main(ports, url: str, overrides: dict) -> None:
    from bench.common import isolate_environment
    from broadcast.app import create_app

    isolate_environment()
    _serve(create_app(bench_settings(url, log_level="ERROR", **overrides)), ports, lifespan="on")


def _serve(app, ports, lifespan: str = "off") -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    config = uvicorn.Config(app, lifespan=lifespan, access_log=False, log_level="warning")
    ports.put(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])


class Process:
    def __init__(self, target, *args, probe: str):
        self._ports = SPAWN.Queue()
        # Not daemonic: the service starts its own feed-parsing processes.
        self.process = SPAWN.Process(target=target, args=(self._ports, *args))
        self.probe = probe

    def __enter__(self) -> str:
        return start_server(self.process, self._ports, self.probe)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(10)


# --- measurement -------------------------------------------------------------------------------


@dataclass
class Round:
    name: str
    poll_seconds: float | None
    readings: int | None
    warning: str | None
    healthz: list[float]
    loop: list[float]


class Prober:
    """Back-to-back GETs of one path until stopped; latencies in milliseconds."""

    def __init__(self, url: str):
        self.url, self.latencies = url, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        while not self._stop.is_set():
            started = time.perf_counter()
            httpx.get(self.url, timeout=120)  # a new connection each time
            self.latencies.append((time.perf_counter() - started) * 1000)
            self._stop.wait(0.01)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(130)


def stored_readings(database: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM feed_readings")).scalar_one()
    engine.dispose()
    return count


def measure(name: str, service_url: str, feed_url: str | None, token: str, database: str) -> Round:
    import httpx

    with Prober(f"{service_url}/healthz") as healthz, Prober(f"{service_url}/no-such-page") as loop:
        if feed_url is None:
            time.sleep(5)
            return Round(name, None, None, None, healthz.latencies, loop.latencies)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=service_url, headers=headers, timeout=600) as client:
            created = client.post(
                "/api/v1/feeds",
                json={"url": feed_url, "kind": "level", "interval_seconds": 86400, "unit": "cm"},
            )
            created.raise_for_status()
            time.sleep(1)  # a few probes before the poll
            started = time.perf_counter()
            polled = client.post(f"/api/v1/feeds/{created.json()['id']}/poll")
            seconds = time.perf_counter() - started
            polled.raise_for_status()
            time.sleep(1)
    feed = polled.json()
    assert feed["status"] == "ok", feed
    readings = stored_readings(database)
    return Round(
        name, seconds, readings, feed.get("last_warning"), healthz.latencies, loop.latencies
    )


def officer_token(url: str) -> str:
    from broadcast.auth.models import Role
    from broadcast.auth.service import add_user
    from broadcast.db import Database

    db = Database(url)
    with db.session_scope() as session:
        _, token = add_user(session, name="bench", role=Role.officer, password="x" * 12)
    db.dispose()
    return token


def run(backend: str, workdir: Path, feed_url: str, args) -> list[Round]:
    rounds = []
    everything, in_thread = {"feed_max_entries": 1_000_000}, {"feed_parse_workers": 0}
    scenarios = [
        ("idle (no poll)", None, {}),
        ("before: every entry kept, parsed in the poll thread", feed_url, everything | in_thread),
        ("every entry kept, parsed in a worker process", feed_url, everything),
        ("newest 500 kept, parsed in the poll thread", feed_url, in_thread),
        ("after: newest 500 kept, parsed in a worker process (default)", feed_url, {}),
    ]
    for name, url, overrides in scenarios:
        print(f"[{backend}] {name}", file=sys.stderr, flush=True)
        database = fresh_database(backend, workdir, "stall", args.postgres_url)
        token = officer_token(database)
        settings = {"feed_allow_private_addresses": True, **overrides}
        with Process(_service_main, database, settings, probe="/healthz") as service_url:
            rounds.append(measure(name, service_url, url, token, database))
    return rounds


NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _figures(values: list[float]) -> str:
    return (
        f"{percentile(values, 50):,.1f} | {percentile(values, 99):,.1f} | "
        f"{max(values):,.1f} | {len(values)}"
    )


def report(
    results: dict[str, list[Round]], facts: dict[str, str], args, command: str, size: int
) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| Machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        f"One RSS feed of {args.entries:,} entries ({size / 1e6:.1f} MB) polled through "
        "`POST /api/v1/feeds/{id}/poll`; latencies in ms.",
        "",
        "| Backend | Round | poll s | readings | /healthz p50 | p99 | max | n "
        "| 404 (event loop) p50 | p99 | max | n |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, rounds in results.items():
        for r in rounds:
            poll = "–" if r.poll_seconds is None else f"{r.poll_seconds:.1f}"
            readings = "–" if r.readings is None else f"{r.readings:,}"
            lines.append(
                f"| {NAMES[backend]} | {r.name} | {poll} | {readings} | "
                f"{_figures(r.healthz)} | {_figures(r.loop)} |"
            )
    warnings = {r.warning for rounds in results.values() for r in rounds if r.warning}
    lines += ["", *[f"Feed status after a capped poll: `last_warning` = “{w}”" for w in warnings]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed_stall",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--entries", type=int, default=45_000)
    database_arguments(parser)
    parser.set_defaults(postgres_url=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    backends, command = prepare(args, "bench.feed_stall", argv)
    from tests.fakes.feeds import large_rss

    started, load_at_start = time.perf_counter(), load_average()
    results: dict[str, list[Round]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-stall-") as tmp,
        Process(_feed_main, args.entries, probe="/") as feed_server,
    ):
        for backend in backends:
            results[backend] = run(backend, Path(tmp), f"{feed_server}/big.xml", args)
    facts = machine_facts(args.postgres_url if "postgresql" in backends else None)
    facts["Load average (1 min), start → end"] = f"{load_at_start} → {load_average()}"
    facts["Duration"] = f"{time.perf_counter() - started:.0f} s"
    text = report(results, facts, args, command.strip(), len(large_rss(args.entries)))
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
