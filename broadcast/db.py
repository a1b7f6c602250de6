"""The database: one engine per process, short transactions, and signals that fire on commit.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout
instead of failing on a stale snapshot. PostgreSQL needs nothing special: row locks with
``SKIP LOCKED`` and ``pg_notify`` (delivered at commit) do the coordination.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from broadcast.events import Bus

NOTIFY_CHANNEL = "broadcast_events"


class Database:
    def __init__(self, url: str, *, bus: Bus | None = None, echo: bool = False):
        self.url = url
        self.bus = bus or Bus()
        self.engine = make_engine(url, echo=echo)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._sessions = sessionmaker(self.engine, class_=Session, expire_on_commit=False)

    def session(self) -> Session:
        session = self._sessions()
        session.info["database"] = self
        return session

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


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
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def emit(session: Session, kind: str, **payload: Any) -> None:
    """Announce an event to every process once the transaction commits (never before, never
    if it rolls back). PostgreSQL: ``pg_notify`` inside the transaction. SQLite: the local bus."""
    database: Database = session.info["database"]
    message = {"kind": kind, **payload}
    if database.is_postgres:
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": json.dumps(message)},
        )
    else:
        session.info.setdefault("pending_events", []).append(message)


@event.listens_for(Session, "after_commit")
def _deliver_pending_events(session: Session) -> None:
    events = session.info.pop("pending_events", [])
    database: Database | None = session.info.get("database")
    if database is not None:
        for message in events:
            database.bus.publish(message)


@event.listens_for(Session, "after_rollback")
def _drop_pending_events(session: Session) -> None:
    session.info.pop("pending_events", None)
