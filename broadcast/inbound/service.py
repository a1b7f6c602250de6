"""Store first, answer then, process after: inbound requests as durable, claimable rows.

A row is stored (and committed) before the provider gets its 2xx, claimed by the process that
stored it for one lease, and marked handled once processed. A row whose process died is
claimed again by a recovery pass in any process once its lease ran out (``SKIP LOCKED`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises the claim).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from broadcast import keys, ratelimit
from broadcast.common import rows_matched, utcnow
from broadcast.inbound.models import InboundMessage
from broadcast.settings import Settings

log = logging.getLogger(__name__)

KEEP = timedelta(days=7)  # keys refuse replays this long (Telegram resends for 24 h)
MAX_ATTEMPTS = 5  # a payload that fails this often is dropped (logged), not retried forever
M = InboundMessage


@dataclass(frozen=True)
class Stored:
    channel: str
    key: str
    payload: dict[str, Any]


def sender_key(session: Session, settings: Settings | None, channel: str, address: str) -> str:
    """The sender as a keyed hash: enough to find a person's stored messages when erasing."""
    return ratelimit.key(keys.secret_key(session, settings), channel, address)


def store(
    session: Session,
    *,
    channel: str,
    key: str,
    payload: dict[str, Any],
    sender: str | None,
    lease: timedelta,
    settings: Settings | None = None,
) -> bool:
    """Store the request, claimed by the caller for ``lease``. False: the key is known (a
    resend or a replay), and nothing was stored."""
    now = utcnow()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(M)
        .values(
            channel=channel,
            key=key,
            sender=sender_key(session, settings, channel, sender) if sender else None,
            payload=payload,
            attempts=1,
            received_at=now,
            claimed_until=now + lease,
        )
        .on_conflict_do_nothing(index_elements=["channel", "key"])
        .returning(M.id)
    )
    return session.execute(statement).first() is not None


def claim(session: Session, channels: list[str], *, lease: timedelta, limit: int) -> list[Stored]:
    """Unhandled rows of ``channels`` whose lease ran out, claimed for another ``lease``. Rows
    that failed ``MAX_ATTEMPTS`` times are dropped instead."""
    now = utcnow()
    due = (
        select(M)
        .where(
            col(M.channel).in_(channels),
            col(M.handled_at).is_(None),
            or_(col(M.claimed_until).is_(None), col(M.claimed_until) < now),
        )
        .order_by(col(M.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for row in session.exec(due).all():
        if row.attempts >= MAX_ATTEMPTS or row.payload is None:
            log.error(
                "dropped an inbound %s message after %s attempts (key %s)",
                row.channel,
                row.attempts,
                row.key,
            )
            _empty(row, now)
        else:
            row.attempts, row.claimed_until = row.attempts + 1, now + lease
            claimed.append(Stored(row.channel, row.key, dict(row.payload)))
        session.add(row)
    return claimed


def done(session: Session, channel: str, key: str) -> None:
    """Processed: only the key stays."""
    session.execute(
        update(M)
        .where(col(M.channel) == channel, col(M.key) == key, col(M.handled_at).is_(None))
        .values(payload=None, sender=None, handled_at=utcnow())
    )


def forget_sender(
    session: Session, channel: str, address: str, settings: Settings | None = None
) -> None:
    """Erasing a person: their stored, not yet processed messages go too."""
    session.execute(
        update(M)
        .where(
            col(M.channel) == channel,
            col(M.sender) == sender_key(session, settings, channel, address),
        )
        .values(payload=None, sender=None, handled_at=utcnow())
    )


def expire(session: Session) -> int:
    """Delete keys older than ``KEEP``: a resend that late is not a resend."""
    result = session.execute(delete(M).where(col(M.received_at) < utcnow() - KEEP))
    return rows_matched(result)


def _empty(row: InboundMessage, now) -> None:
    row.payload, row.sender, row.handled_at = None, None, now
