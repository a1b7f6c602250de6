"""Helpers shared by the benchmarks: settings and databases, a zero-latency webhook receiver in
its own process, peak-RSS measurement, percentiles and the facts about the machine.

Everything binds and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import platform
import queue
import re
import socket
import sqlite3
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
WEBHOOK_SECRET = "bench-webhook-secret"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
SPAWN = multiprocessing.get_context("spawn")


def clock_ns() -> int:
    """CLOCK_MONOTONIC is one clock for the whole machine on Linux, so timestamps taken in the
    receiver process and in the benchmark process can be subtracted."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def isolate_environment() -> None:
    """No developer setting leaks in: the BROADCAST_* variables are dropped and the default TOML
    file is not read (the benchmark passes every setting explicitly)."""
    for name in list(os.environ):
        if name.startswith("BROADCAST_"):
            del os.environ[name]
    os.environ["BROADCAST_CONFIG"] = str(ROOT / "bench" / "no-such-config.toml")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)


def bench_settings(database_url: str, *, webhook_urls: list[str] | None = None, **overrides):
    """Production defaults (lease, safety poll, retry policy) except what a benchmark must set."""
    from broadcast.settings import Settings

    return Settings(
        database_url=database_url,
        public_url="http://127.0.0.1:8000",
        areas_file=ROOT / "config" / "areas.toml",
        log_json=False,
        channels={
            "webhook": {
                "secret": WEBHOOK_SECRET,
                "urls": list(webhook_urls or []),
                "allow_private_addresses": True,
            }
        },  # 127.0.0.1
        **overrides,
    )


def channel_classes() -> list[type]:
    from channels.platform import PlatformChannel
    from channels.webhook import WebhookChannel

    return [PlatformChannel, WebhookChannel]


# --- databases ----------------------------------------------------------------------------------


def ensure_postgres_database(url: str) -> None:
    """Create the benchmark database if it does not exist. Refuses any database whose name does
    not contain "bench": the benchmark drops and recreates its schema."""
    parsed = make_url(url)
    if "bench" not in (parsed.database or ""):
        raise SystemExit(
            f"refusing to use database {parsed.database!r}: its schema is dropped; "
            "use a database whose name contains 'bench'"
        )
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        ).scalar()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def fresh_database(backend: str, workdir: Path, name: str, postgres_url: str) -> str:
    """An empty, migrated database with the configured areas; returns its URL."""
    from broadcast.db import Database
    from broadcast.runtime import prepare_database

    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        url = postgres_url
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    db = Database(url)
    prepare_database(db, bench_settings(url))
    db.dispose()
    return url


SUBSCRIBER_COLUMNS = (
    "id",
    "channel",
    "address",
    "language",
    "min_severity",
    "state",
    "consent_at",
    "created_at",
)


def seed_subscribers(url: str, subscribers: list[tuple], areas: list[tuple[int, str]]) -> None:
    """Bulk load: COPY on PostgreSQL, one executemany in one transaction on SQLite."""
    from broadcast.subscribers.models import Subscriber, SubscriberArea

    engine = create_engine(url)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            connection = raw.driver_connection
            with connection.cursor() as cursor:
                with cursor.copy(
                    f"COPY subscribers ({', '.join(SUBSCRIBER_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in subscribers:
                        copy.write_row(row)
                with cursor.copy(
                    "COPY subscriber_areas (subscriber_id, area_code) FROM STDIN"
                ) as copy:
                    for row in areas:
                        copy.write_row(row)
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), "
                    "(SELECT max(id) FROM subscribers))"
                )
            connection.commit()
            # What autovacuum would have done by the time a real audience of this size exists.
            connection.autocommit = True
            connection.execute("ANALYZE subscribers")
            connection.execute("ANALYZE subscriber_areas")
        finally:
            raw.close()
    else:
        with engine.begin() as connection:
            connection.execute(
                Subscriber.__table__.insert(),
                [dict(zip(SUBSCRIBER_COLUMNS, row, strict=True)) for row in subscribers],
            )
            if areas:
                connection.execute(
                    SubscriberArea.__table__.insert(),
                    [{"subscriber_id": s, "area_code": a} for s, a in areas],
                )
    engine.dispose()


def clear_deliveries(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("TRUNCATE deliveries"))
        else:
            connection.execute(text("DELETE FROM deliveries"))
    engine.dispose()


def postgres_version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar()).split()[0]
    finally:
        engine.dispose()


# --- the receiver -------------------------------------------------------------------------------


def _receiver_app(log: Any):
    """A minimal ASGI app: answers every POST with an empty 200 at once. POSTs to ``/lat…`` also
    report (arrival time, X-Broadcast-Delivery) to the benchmark; ``GET /count`` says how many
    POSTs arrived. The arrival time is taken when the request reaches the app (headers parsed),
    before the body is read."""
    count = 0
    ok = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    empty = {"type": "http.response.body", "body": b""}

    async def app(scope, receive, send):
        nonlocal count
        if scope["type"] != "http":
            return
        arrived = clock_ns()
        while (await receive()).get("more_body"):
            pass
        if scope["method"] == "POST":
            count += 1
            if scope["path"].startswith("/lat"):
                delivery = next(
                    (v for k, v in scope["headers"] if k == b"x-broadcast-delivery"), b""
                ).decode()
                log.put((arrived, delivery))
            await send(ok)
            await send(empty)
            return
        body = json.dumps({"count": count}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def _receiver_main(ports: Any, log: Any) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    config = uvicorn.Config(
        _receiver_app(log),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=2048,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)
    ports.put(sock.getsockname()[1])
    server.run(sockets=[sock])


def start_server(process, ports, probe: str) -> str:
    """Start a server process that puts its port on ``ports``; return its URL once ``probe``
    answers."""
    import httpx

    process.start()
    url = f"http://{HOST}:{ports.get(timeout=60)}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}{probe}", timeout=1)
            return url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Receiver:
    """The zero-latency partner system, in its own process (uvicorn + uvloop + httptools), so its
    CPU time does not compete for the benchmark process's GIL. The same receiver serves the
    baselines and the dispatcher."""

    def __init__(self) -> None:
        self.log = SPAWN.Queue()
        self._ports = SPAWN.Queue()
        self.process = SPAWN.Process(
            target=_receiver_main, args=(self._ports, self.log), name="bench-receiver", daemon=True
        )
        self.url = ""

    def __enter__(self) -> Receiver:
        self.url = start_server(self.process, self._ports, "/count")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(10)

    def count(self) -> int:
        import httpx

        return int(httpx.get(f"{self.url}/count", timeout=5).json()["count"])

    def next_arrival(self, timeout: float) -> tuple[int, str]:
        """(arrival ns, delivery header) of the next ``/lat`` POST; raises queue.Empty."""
        return self.log.get(timeout=timeout)

    def drain(self) -> None:
        with _suppress(queue.Empty):
            while True:
                self.log.get_nowait()


class _suppress:
    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        return kind is not None and issubclass(kind, self.kinds)


# --- memory -------------------------------------------------------------------------------------


def status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


class PeakRss:
    """Peak growth of this process's resident set during the block.

    Primary: the kernel's own high-water mark, VmHWM, reset to the current RSS on entry by
    writing 5 to /proc/self/clear_refs (exact, no sampling gaps). Cross-check and fallback: a
    thread sampling VmRSS every 5 ms. The figure is the larger of the two, minus the RSS at entry.
    RSS counts everything the process holds: Python objects, the driver's buffers and, on SQLite,
    the database engine itself (it runs in-process); a PostgreSQL server's memory is not ours.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.before_kb = self.sampled_kb = self.hwm_kb = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.before_kb = self.sampled_kb = status_kb("VmRSS")
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.sampled_kb = max(self.sampled_kb, status_kb("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self.sampled_kb = max(self.sampled_kb, status_kb("VmRSS"))
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        if self.hwm_reset:
            self.hwm_kb = status_kb("VmHWM")

    @property
    def method(self) -> str:
        return "VmHWM reset + 5 ms VmRSS sampler" if self.hwm_reset else "5 ms VmRSS sampler"

    @property
    def extra_mb(self) -> float:
        return (max(self.sampled_kb, self.hwm_kb) - self.before_kb) / 1024


# --- statistics and facts -----------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return percentile(values, 50)


def load_average() -> str:
    """The 1-minute load average: other work on the machine shows up here."""
    try:
        with open("/proc/loadavg") as handle:
            return handle.read().split()[0]
    except OSError:
        return "?"


def machine_facts(postgres_url: str | None) -> dict[str, str]:
    cpu = "unknown"
    with _suppress(OSError), open("/proc/cpuinfo") as handle:
        found = re.search(r"^model name\s*:\s*(.+)$", handle.read(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    mem_gb = "unknown"
    with _suppress(OSError, ValueError), open("/proc/meminfo") as handle:
        kb = int(re.search(r"MemTotal:\s+(\d+)", handle.read()).group(1))
        mem_gb = f"{kb / 1024 / 1024:.0f} GiB"
    facts = {
        "CPU": f"{os.cpu_count()} × {cpu}",
        "Memory": mem_gb,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
    }
    if postgres_url:
        with _suppress(Exception):
            facts["PostgreSQL"] = postgres_version(postgres_url)
    libs = []
    for package in ("SQLAlchemy", "psycopg", "httpx", "uvicorn", "uvloop"):
        with _suppress(metadata.PackageNotFoundError):
            libs.append(f"{package} {metadata.version(package)}")
    facts["Libraries"] = ", ".join(libs)
    return facts


def database_arguments(parser) -> None:
    """The options every benchmark shares: which databases, where PostgreSQL is, a report file."""
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="its database name must contain 'bench' (default %(default)s)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")


def prepare(args, module: str, argv: list[str] | None) -> tuple[list[str], str]:
    """Isolate the environment, create the PostgreSQL database if needed; returns the backends
    to measure and the command line to print in the report."""
    isolate_environment()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        ensure_postgres_database(args.postgres_url)
    given = argv if argv is not None else sys.argv[1:]
    return backends, f"python -m {module} " + " ".join(given)
