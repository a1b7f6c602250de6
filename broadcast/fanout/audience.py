"""Expand a published update into delivery rows, inside the publishing transaction.

The subscriber fan-out is one ``INSERT … SELECT`` per channel: the database streams the audience
into the outbox itself, so 100,000 subscribers never pass through Python's memory. The unique key
(update, channel, target) with ``ON CONFLICT DO NOTHING`` makes a repeated expansion harmless.
"""

from __future__ import annotations

from sqlalchemy import String, and_, cast, exists, literal, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from broadcast.areas import service as areas
from broadcast.common import Severity, rows_matched, table_of, utcnow
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.models import Delivery, DeliveryState
from broadcast.subscribers.models import Subscriber, SubscriberArea, SubscriberState
from broadcast.timeline.models import Update

DELIVERIES = table_of(Delivery)

RESENT_TO = (
    DeliveryState.pending,
    DeliveryState.sending,
    DeliveryState.sent,
    DeliveryState.delivered,
)


def expand(session: Session, update: Update, channels: ChannelSet) -> int:
    """Queue the update for its audience; returns the number of rows added."""
    if update.supersedes_id is not None:
        return _follow_original(session, update)
    added = 0
    chosen = channels.chosen(update.channels)
    for channel in chosen:
        for address in channel.broadcast_targets():
            added += _insert_values(session, [_row(update, channel.name, address)])
    per_subscriber = [c.name for c in chosen if c.capabilities.per_subscriber]
    if per_subscriber and update.public:
        added += _insert_subscribers(session, update, per_subscriber)
    return added


def queue_one(
    session: Session, update: Update, channel: str, *, question_id: int, language: str
) -> int:
    """A private message to one resident (the answer to a question)."""
    row = _row(update, channel, f"q{question_id}") | {
        "question_id": question_id,
        "language": language,
    }
    return _insert_values(session, [row])


def _row(update: Update, channel: str, target: str) -> dict:
    now = utcnow()
    return {
        "update_id": update.id,
        "channel": channel,
        "target": target,
        "state": DeliveryState.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "language": "nl",
    }


def _insert_values(session: Session, rows: list[dict]) -> int:
    statement = _insert(session).values(rows).on_conflict_do_nothing()
    return rows_matched(session.execute(statement)) or 0


def _insert_subscribers(session: Session, update: Update, channel_names: list[str]) -> int:
    now = utcnow()
    audience = select(
        literal(update.id),
        col(Subscriber.channel),
        literal("s") + cast(col(Subscriber.id), String),
        col(Subscriber.id),
        literal(DeliveryState.pending.value),
        literal(0),
        literal(now, DELIVERIES.c.next_attempt_at.type),
        literal(now, DELIVERIES.c.created_at.type),
        col(Subscriber.language),
    ).where(
        col(Subscriber.state) == SubscriberState.active,
        col(Subscriber.channel).in_(channel_names),
        col(Subscriber.min_severity).in_(Severity(update.severity).at_most()),
        _area_filter(session, update),
    )
    columns = [
        "update_id",
        "channel",
        "target",
        "subscriber_id",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "language",
    ]
    statement = _insert(session).from_select(columns, audience).on_conflict_do_nothing()
    return rows_matched(session.execute(statement)) or 0


def _area_filter(session: Session, update: Update):
    """No areas on the update: everyone. Otherwise subscribers of a related area, and those who
    chose no area (the whole municipality)."""
    if not update.areas:
        return literal(True)
    codes = areas.related(session, update.areas)
    same_subscriber = col(SubscriberArea.subscriber_id) == col(Subscriber.id)
    has_area = exists().where(same_subscriber)
    in_area = exists().where(and_(same_subscriber, col(SubscriberArea.area_code).in_(codes)))
    return or_(not_(has_area), in_area)


def _follow_original(session: Session, update: Update) -> int:
    """A correction or retraction goes to exactly the targets of the update it supersedes; its
    deliveries that had not gone out yet are cancelled, so nobody gets the wrong text late
    (also those claimed and waiting in a dispatcher for a provider to come back: it checks
    before it sends them)."""
    original = DELIVERIES.c
    waiting = [DeliveryState.pending, DeliveryState.sending]
    session.execute(
        DELIVERIES.update()
        .where(original.update_id == update.supersedes_id, original.state.in_(waiting))
        .values(state=DeliveryState.cancelled, last_error="superseded before sending")
    )
    now = utcnow()
    targets = select(
        literal(update.id),
        original.channel,
        original.target,
        original.subscriber_id,
        original.question_id,
        literal(DeliveryState.pending.value),
        literal(0),
        literal(now, original.next_attempt_at.type),
        literal(now, original.created_at.type),
        original.language,
    ).where(
        original.update_id == update.supersedes_id,
        original.state.in_([*RESENT_TO, DeliveryState.cancelled]),
    )
    columns = [
        "update_id",
        "channel",
        "target",
        "subscriber_id",
        "question_id",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "language",
    ]
    statement = _insert(session).from_select(columns, targets).on_conflict_do_nothing()
    return rows_matched(session.execute(statement)) or 0


def _insert(session: Session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Without it SQLAlchemy's psycopg dialect reports -1 for an INSERT, and the count of
    # queued deliveries (in the audit trail) would be wrong on PostgreSQL.
    return dialect.insert(DELIVERIES).execution_options(preserve_rowcount=True)
