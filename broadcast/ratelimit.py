"""Events counted per key over a sliding window, in the database, so that every process shares
the count and a restart forgets nothing: failed console logins, questions from the public site.

Keys are stored only as keyed hashes (HMAC-SHA-256 with the installation's secret key, see
``broadcast.keys``): a password typed into a name field or a client's address cannot be
found again by hashing every candidate. A row is kept only as long as its window lasts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from broadcast import keys
from broadcast.common import UTCDateTime, utcnow


class RateEvent(SQLModel, table=True):
    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_kind_key_at", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)  # what is counted: "login-account", "question-client", ...
    key: str = Field(max_length=64)  # whose: a hash
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


@dataclass(frozen=True)
class Limit:
    kind: str
    count: int  # at most this many events ...
    window: timedelta  # ... in any window this long


def key(secret: bytes, *parts: str) -> str:
    """The stored form of who is counted (case and surrounding spaces do not matter)."""
    return keys.digest(secret, *(p.strip().lower() for p in parts))


def wait(session: Session, limit: Limit, of: str) -> int:
    """Seconds until one more event of ``of`` keeps within ``limit`` (0: it does now). Rows
    older than the window are deleted on the way."""
    now = utcnow()
    since = _forget_before(session, limit.kind, now - limit.window)
    newest = session.exec(
        select(RateEvent.at)
        .where(RateEvent.kind == limit.kind, RateEvent.key == of, col(RateEvent.at) >= since)
        .order_by(col(RateEvent.at).desc())
        .limit(limit.count)
    ).all()
    if len(newest) < limit.count:
        return 0
    return max(1, math.ceil((newest[-1] + limit.window - now).total_seconds()))


def backoff(
    session: Session, kind: str, of: str, *, free: int, first: timedelta, longest: timedelta
) -> int:
    """Seconds to wait before the next event of ``of``: none while fewer than ``free`` events
    happened within ``longest``; then ``first`` after the latest one, doubling with every
    further event, at most ``longest``. Rows older than ``longest`` are deleted on the way."""
    now = utcnow()
    since = _forget_before(session, kind, now - longest)
    count, latest = session.exec(
        select(func.count(), func.max(RateEvent.at)).where(
            RateEvent.kind == kind, RateEvent.key == of, col(RateEvent.at) >= since
        )
    ).one()
    if count < free:
        return 0
    doublings = min(count - free, 32)  # bounded: parallel tries can overshoot the count
    delay = min(longest, first * 2**doublings)
    return max(0, math.ceil((latest + delay - now).total_seconds()))


def _forget_before(session: Session, kind: str, since: datetime) -> datetime:
    session.execute(delete(RateEvent).where(col(RateEvent.kind) == kind, col(RateEvent.at) < since))
    return since


def record(session: Session, kind: str, of: str) -> None:
    session.add(RateEvent(kind=kind, key=of))


def forget(session: Session, kind: str, of: str) -> None:
    session.execute(delete(RateEvent).where(col(RateEvent.kind) == kind, col(RateEvent.key) == of))
