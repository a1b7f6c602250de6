"""The database: one engine per process, short transactions, and signals that fire on commit.

SQLite runs in WAL mode. A unit of work that writes begins with ``BEGIN IMMEDIATE`` so that two
writers queue on the busy timeout instead of failing on a stale snapshot; a read begins with a
plain (deferred) ``BEGIN`` and, in WAL, never waits for a writer. PostgreSQL needs nothing special:
reads run in their own short read-only transaction; row locks with ``SKIP LOCKED`` and
``pg_notify`` (delivered at commit) do the coordination.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine.result import ResultInternal
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from broadcast.events import Bus

NOTIFY_CHANNEL = "broadcast_events"
READ_ONLY = "broadcast_read_only"  # execution option: this transaction only reads
READ_THREADS = 8  # reads get their own threads: pages never queue behind other blocking work
T = TypeVar("T")


def _sqlite_table_hint(compiler: SQLiteCompiler, table: Any, hint: str | None) -> str | None:
    return hint


# SQLite's ``INDEXED BY`` as a table hint, ``select(…).with_hint(table, "INDEXED BY ix", "sqlite")``
# (SQLAlchemy renders table hints only for dialects that say how; SQLite's compiler does not).
# Without statistics SQLite's planner may rate a partial index no better than a full one with
# the same columns; the claim queries (``broadcast.delivery.queue``) name theirs.
setattr(SQLiteCompiler, "get_from_hint_text", _sqlite_table_hint)  # noqa: B010


@dataclass
class Outage:
    """A time the database did not answer this process: from the first failed statement or
    connection to the next connection that worked."""

    started_at: datetime
    error: str
    ended_at: datetime | None = None


class DatabaseHealth:
    """What this process saw of the database: the outage going on, else the last one."""

    def __init__(self) -> None:
        self.last: Outage | None = None
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self.last is not None and self.last.ended_at is None

    def failed(self, error: BaseException | str) -> None:
        name = error if isinstance(error, str) else type(error).__name__
        with self._lock:
            if not self.failing:
                self.last = Outage(started_at=_now(), error=name)

    def answered(self) -> None:
        if self.failing:  # cheap when nothing is wrong: every checkout passes here
            with self._lock:
                if self.last is not None and self.last.ended_at is None:
                    self.last.ended_at = _now()


def _now() -> datetime:
    return datetime.now(UTC)


class Database:
    def __init__(self, url: str, *, bus: Bus | None = None, echo: bool = False):
        self.url = url
        self.bus = bus or Bus()
        self.engine = make_engine(url, echo=echo)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.health = DatabaseHealth()
        _watch(self.engine, self.health)
        self._sessions = sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**_read_options(self.is_postgres)),
            class_=Session,
            expire_on_commit=False,
        )
        self._readers: ThreadPoolExecutor | None = None

    def session(self, *, write: bool = True) -> Session:
        session = (self._sessions if write else self._read_sessions)()
        session.info["database"] = self
        return session

    @contextmanager
    def session_scope(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error. ``write=False``: a read
        that never waits for the write lock (and, on PostgreSQL, may not write)."""
        with self.session(write=write) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """``work(session)`` as one unit of work in a thread, off the event loop. Reads run on a
        bounded pool of their own, so they never queue behind writes or other blocking calls.

        ``work`` must return plain values: a live SQLAlchemy result (``session.execute(…)``
        itself) would be iterated on the event loop's thread after the transaction, fetching
        rows there and freezing every request meanwhile, so it is refused (``TypeError``)."""

        def unit() -> T:
            with self.session_scope(write=write) as session:
                return _materialized(work(session), work)

        if write:
            return await asyncio.to_thread(unit)
        return await asyncio.get_running_loop().run_in_executor(self._read_pool(), unit)

    def _read_pool(self) -> ThreadPoolExecutor:
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="db-read")
        return self._readers

    def dispose(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=False)
            self._readers = None
        self.engine.dispose()


def _watch(engine: Engine, health: DatabaseHealth) -> None:
    """Lost connections and refused ones open an outage; the next good connection ends it."""

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.is_disconnect or isinstance(
            context.original_exception, (OSError, ConnectionError)
        ):
            health.failed(context.original_exception)

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(*_: Any) -> None:
        health.answered()


def _materialized(value: T, work: Callable[..., Any]) -> T:
    items = value if isinstance(value, tuple | list) else (value,)
    if any(isinstance(item, ResultInternal) for item in items):
        name = getattr(work, "__qualname__", repr(work))
        raise TypeError(
            f"{name} returned a live SQLAlchemy result: fetch it inside the unit of work "
            "(.all(), .scalar(), .one()) so no rows are read on the event loop"
        )
    return value


def _read_options(is_postgres: bool) -> dict[str, Any]:
    return {READ_ONLY: True} | ({"postgresql_readonly": True} if is_postgres else {})


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo)
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_engine(url: str, echo: bool) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        reads_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    return engine


def emit(session: Session, kind: str, **payload: Any) -> None:
    """Announce an event once the transaction commits (never before, never if it rolls back):
    to this process's bus in the committing thread, so the next request here already sees it
    (a page cache is dropped before the handler answers), and on PostgreSQL to every other
    process through ``pg_notify`` inside the transaction (the listener skips our own)."""
    database: Database = session.info["database"]
    message = {"kind": kind, **payload}
    if database.is_postgres:
        notice = {**message, "origin": database.bus.origin}
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": json.dumps(notice)},
        )
    session.info.setdefault("pending_events", []).append(message)


@event.listens_for(Session, "after_commit")
def _deliver_pending_events(session: Session) -> None:
    # SQLAlchemy also calls this when a savepoint is released (``begin_nested``, as every console
    # form acts): then nothing is committed yet, and a listener reading the database (the live
    # pages' hub, a cache re-render) would see the old state. Only the outermost commit counts.
    if session.in_nested_transaction():
        return
    events = session.info.pop("pending_events", [])
    database: Database | None = session.info.get("database")
    if database is not None:
        for message in events:
            database.bus.publish(message)


@event.listens_for(Session, "after_rollback")
def _drop_pending_events(session: Session) -> None:
    session.info.pop("pending_events", None)
