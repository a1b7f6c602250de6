"""Publish under load: incident page and ``/healthz`` latency while one update is published to a
million subscribers, next to a quiet period of the same run.

    python -m bench.publish_load [--subscribers 1000000] [--database sqlite|postgresql]
                                 [--window 20] [--connections 16] [--output FILE]

``broadcast demo`` seeds the Maas-flood scenario into a fresh database (a SQLite file, or a
PostgreSQL database with a random name that is dropped afterwards); ``--subscribers`` active
webhook subscribers are then added with one ``INSERT … SELECT`` (no area: the whole municipality,
so every one of them is in the audience). Their addresses are URLs on a receiver in its own process
that answers 200 at once, so the webhook channel costs the server nothing but the real work:
``broadcast serve`` (one process, dispatcher and scheduler on, as an operator runs it) expands the
update into one delivery row per subscriber inside the publishing transaction, and the dispatcher
then claims and sends them.

The load generator is a keep-alive HTTP/1.1 client on asyncio and uvloop in its own process:
``--connections`` connections, half on ``/incidents/<slug>`` and half on ``/healthz``, for the whole
run; each request is filed under the window in which it was sent (CLOCK_MONOTONIC is one clock for
the machine). The windows: (a) quiet: ``--window`` seconds before the publish; (b) publishing: from
the moment the officer's ``POST /api/v1/incidents/{id}/updates`` is sent until it returns (after the
transaction with the fan-out has committed); (c) dispatching: the ``--window`` seconds after that,
while the dispatcher works through the rows. A closed-loop client sends fewer requests while the
server is slow, so a stall shows as few slow samples (the max column), not many.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import bindparam, create_engine, make_url, text

from bench.common import (
    HOST,
    SPAWN,
    WEBHOOK_SECRET,
    Receiver,
    clock_ns,
    isolate_environment,
    load_average,
    machine_facts,
    percentile,
)
from bench.public import free_port, service_env, start

DEFAULT_POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_P99_MS = 100.0
WARMUP_SECONDS = 3.0
BODY = {
    "nl": "De Maas stijgt sneller dan verwacht. Bewoners van Mook, Middelaar en Molenhoek: "
    "zet waardevolle spullen hoog en volg de aanwijzingen van de hulpdiensten.",
    "en": "The Maas is rising faster than expected. Residents of Mook, Middelaar and Molenhoek: "
    "move valuables upstairs and follow the instructions of the emergency services.",
}


# --- the load generator -------------------------------------------------------------------------


async def _one_connection(port: int, request: bytes, kind: int, stop, samples: list) -> None:
    """Requests back to back on one keep-alive connection; (sent ns, latency ns, kind, status)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while not stop.is_set():
            sent = clock_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            samples.append((sent, clock_ns() - sent, kind, int(head.split(b" ", 2)[1])))
    finally:
        writer.close()


def _load_main(port: int, requests: list[bytes], connections: int, ready, stop, results) -> None:
    import uvloop

    async def run() -> list:
        samples: list = []
        ready.set()
        await asyncio.gather(
            *(
                _one_connection(port, requests[i % len(requests)], i % len(requests), stop, samples)
                for i in range(connections)
            )
        )
        return samples

    results.put(uvloop.run(run()))


def request_bytes(port: int, path: str) -> bytes:
    # Accept-Encoding as a browser sends it: the server answers from its compressed copy.
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept-Encoding: gzip"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Load:
    """The load generator process: runs from ``start()`` until ``stop()``, returns its samples."""

    def __init__(self, url: str, paths: list[str], connections: int) -> None:
        port = int(url.rsplit(":", 1)[1])
        self.ready, self._stop, self._results = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
        requests = [request_bytes(port, path) for path in paths]
        self.process = SPAWN.Process(
            target=_load_main,
            args=(port, requests, connections, self.ready, self._stop, self._results),
            name="bench-load",
            daemon=True,
        )

    def start(self) -> None:
        self.process.start()
        if not self.ready.wait(60):
            raise RuntimeError("the load generator did not start")

    def stop(self) -> list[tuple[int, int, int, int]]:
        self._stop.set()
        samples = self._results.get(timeout=600)  # in-flight requests finish first
        self.process.join(30)
        return samples


# --- the database -------------------------------------------------------------------------------


def create_postgres_database(server: str) -> str:
    """A database of our own with a random name; returns its URL."""
    name = f"bench_publish_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


NUMBERS = {
    "sqlite": "WITH RECURSIVE numbers(i) AS "
    "(SELECT 1 UNION ALL SELECT i + 1 FROM numbers WHERE i < :count) SELECT i FROM numbers",
    "postgresql": "SELECT generate_series(1, :count) AS i",
}


def seed_webhook_subscribers(url: str, count: int, receiver_url: str) -> None:
    """``count`` active webhook subscribers on the receiver, no area, one statement; a quarter
    read English."""
    from broadcast.common import utcnow
    from broadcast.subscribers.models import Subscriber

    engine = create_engine(url)
    numbers = NUMBERS[engine.dialect.name]
    statement = text(
        "INSERT INTO subscribers "
        "(channel, address, language, min_severity, state, consent_at, created_at) "
        "SELECT 'webhook', :prefix || CAST(i AS VARCHAR), "
        "CASE WHEN i % 4 = 0 THEN 'en' ELSE 'nl' END, 'info', 'active', :now, :now "
        f"FROM ({numbers}) AS n"
    ).bindparams(bindparam("now", type_=Subscriber.__table__.c.created_at.type))
    with engine.begin() as connection:
        connection.execute(
            statement, {"count": count, "prefix": f"{receiver_url}/s/", "now": utcnow()}
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE subscribers"))  # what autovacuum would have done
    engine.dispose()


def count_deliveries(url: str, update_id: int) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM deliveries WHERE update_id = :id AND channel = 'webhook'"),
            {"id": update_id},
        ).scalar_one()
    engine.dispose()
    return int(found)


# --- the server ---------------------------------------------------------------------------------


def server_env(database_url: str) -> dict[str, str]:
    return service_env(database_url) | {
        "BROADCAST_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BROADCAST_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on 127.0.0.1
    }


def seed_demo(workdir: Path, env: dict) -> str:
    """``broadcast demo``; returns the officer's API token it prints."""
    done = subprocess_run([sys.executable, "-m", "broadcast.cli", "demo"], env, workdir)
    return re.search(r"officer 'adviseur' API token: (\S+)", done)[1]


def subprocess_run(command: list[str], env: dict, cwd: Path) -> str:
    import subprocess

    done = subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def start_serve(workdir: Path, env: dict):
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "broadcast.cli", "serve", "--port", str(port)]
    return start(command, env, workdir, f"{url}/healthz", workdir / "serve.log"), url


def stop_serve(server) -> None:
    """SIGTERM; the dispatcher may still be working through the rows, so kill after a minute."""
    import subprocess

    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


# --- the run ------------------------------------------------------------------------------------


def run_windows(url: str, token: str, receiver: Receiver, args, say) -> dict:
    """Quiet window, then publish; returns the windows (start, end ns), the samples and what the
    dispatcher sent."""
    auth = {"Authorization": f"Bearer {token}"}
    incident = httpx.get(f"{url}/api/v1/incidents", headers=auth).json()[0]
    paths = [f"/incidents/{incident['slug']}", "/healthz"]
    load = Load(url, paths, args.connections)
    load.start()
    try:
        time.sleep(WARMUP_SECONDS)
        say("quiet window")
        quiet = (clock_ns(), 0)
        time.sleep(args.window)
        quiet = (quiet[0], clock_ns())
        say("publishing")
        sent_before = receiver.count()
        posted = clock_ns()
        response = httpx.post(
            f"{url}/api/v1/incidents/{incident['id']}/updates",
            headers=auth,
            json={"body": BODY, "severity": "warning"},
            timeout=None,
        )
        committed = clock_ns()
        response.raise_for_status()
        sent_at_commit = receiver.count()
        say(f"committed after {(committed - posted) / 1e9:.1f} s; dispatching window")
        time.sleep(args.window)
        finished = clock_ns()
        sent_at_end = receiver.count()
    finally:
        samples = load.stop()
    return {
        "paths": paths,
        "update_id": response.json()["id"],
        "windows": {
            "quiet": quiet,
            "publishing": (posted, committed),
            "dispatching": (committed, finished),
        },
        "samples": samples,
        "sent": {
            "publishing": sent_at_commit - sent_before,
            "dispatching": sent_at_end - sent_at_commit,
        },
    }


def summarize(measured: dict) -> list[dict]:
    rows = []
    for window, (begin, end) in measured["windows"].items():
        for kind, path in enumerate(measured["paths"]):
            chosen = [s for s in measured["samples"] if s[2] == kind and begin <= s[0] < end]
            ms = [s[1] / 1e6 for s in chosen]
            rows.append(
                {
                    "window": window,
                    "seconds": (end - begin) / 1e9,
                    "path": re.sub(r"/incidents/.+", "/incidents/<slug>", path),
                    "n": len(ms),
                    "p50": percentile(ms, 50),
                    "p99": percentile(ms, 99),
                    "max": max(ms, default=float("nan")),
                    "errors": sum(1 for s in chosen if s[3] >= 400),
                    "sent": measured["sent"].get(window),
                }
            )
    return rows


def measure(args, say) -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp, Receiver() as receiver:
        workdir = Path(tmp)
        if args.database == "sqlite":
            database_url = f"sqlite:///{workdir}/broadcast.db"
        else:
            database_url = create_postgres_database(args.postgres_server)
        try:
            env = server_env(database_url)
            token = seed_demo(workdir, env)
            started = time.perf_counter()
            seed_webhook_subscribers(database_url, args.subscribers, receiver.url)
            say(f"seeded {args.subscribers:,} subscribers in {time.perf_counter() - started:.1f} s")
            server, url = start_serve(workdir, env)
            try:
                measured = run_windows(url, token, receiver, args, say)
            finally:
                stop_serve(server)
            rows = count_deliveries(database_url, measured["update_id"])
            if rows != args.subscribers:
                raise RuntimeError(
                    f"{rows:,} webhook deliveries queued, expected {args.subscribers:,}"
                )
            return summarize(measured), {"deliveries": rows}
        finally:
            if args.database == "postgresql":
                drop_postgres_database(args.postgres_server, database_url)


# --- report -------------------------------------------------------------------------------------

WINDOW_NAMES = {
    "quiet": "quiet, no publish",
    "publishing": "publishing: POST sent → committed",
    "dispatching": "dispatching: after the commit",
}


def row_text(row: dict) -> str:
    publishing = row["window"] != "quiet"
    verdict = "—"
    if publishing:
        verdict = "✅ met" if row["p99"] < TARGET_P99_MS else "❌ missed"
    sent = "" if row["sent"] is None else f"{row['sent']:,}"
    return (
        f"| {WINDOW_NAMES[row['window']]} | {row['seconds']:.1f} s | `{row['path']}` "
        f"| {row['n']:,} | {row['p50']:.1f} ms | {row['p99']:.1f} ms | {row['max']:.1f} ms "
        f"| {row['errors']} | {sent} | {verdict} |"
    )


def report(rows: list[dict], checks: dict, command: str, facts: dict, args) -> str:
    lines = [f"Command: `{command}`", "", "| Machine | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    lines += [
        "",
        f"Database: {args.database}; {args.subscribers:,} webhook subscribers, "
        f"{checks['deliveries']:,} delivery rows written by the publish; "
        f"{args.connections} keep-alive connections (half per path).",
        "",
        "| Window | Length | Path | n | p50 | p99 | max | errors | webhook sends in window "
        f"| p99 < {TARGET_P99_MS:.0f} ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row_text(row) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--postgres-server",
        default=DEFAULT_POSTGRES_SERVER,
        help="where a database with a random name is created and dropped (default %(default)s)",
    )
    parser.add_argument("--window", type=float, default=20.0, help="seconds (quiet, dispatching)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    isolate_environment()
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m bench.publish_load " + " ".join(given)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_at_start, started = load_average(), time.perf_counter()
    rows, checks = measure(args, say)
    facts = machine_facts(args.postgres_server if args.database == "postgresql" else None)
    facts["Load average (1 min), start → end"] = f"{load_at_start} → {load_average()}"
    facts["Duration"] = f"{time.perf_counter() - started:.0f} s"
    output = report(rows, checks, command.strip(), facts, args)
    print(output)
    if args.output:
        args.output.write_text(output + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
