"""Expand a published update into delivery rows, inside the publishing transaction.

The subscriber fan-out is one ``INSERT … SELECT`` per channel: the database streams the audience
into the outbox itself, so 100,000 subscribers never pass through Python's memory. The unique key
(update, channel, target) with ``ON CONFLICT DO NOTHING`` makes a repeated expansion harmless;
the first expansion of an update (nothing to conflict with: the publishing transaction holds the
update's row, so a second one waits and then sees these rows) inserts plainly, which PostgreSQL
does faster. The area filter is two ``SELECT``s joined by ``UNION ALL`` (no area at all; an area
that matches) rather than one ``OR`` of two correlated subqueries: PostgreSQL then plans an anti
join and a semi join instead of probing the area index twice per subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    not_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from broadcast.areas import service as areas
from broadcast.common import Severity, rows_matched, table_of, utcnow
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.models import Delivery, DeliveryState
from broadcast.incidents.models import Incident
from broadcast.subscribers.models import OPTED_OUT, Subscriber, SubscriberArea, SubscriberState
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
    fresh = not _has_deliveries(session, update)
    chosen = channels.chosen(update.channels)
    testers_only = _testers_only(session, update)
    for channel in chosen:
        if testers_only and not channel.capabilities.own_site:
            continue  # an exercise stays off public channels and accounts
        for address in channel.broadcast_targets():
            added += _insert_values(session, [_row(update, channel.name, address)])
    per_subscriber = [c.name for c in chosen if c.capabilities.per_subscriber]
    if per_subscriber and update.public:
        added += _insert_subscribers(
            session, update, per_subscriber, fresh=fresh, testers_only=testers_only
        )
    return added


def _has_deliveries(session: Session, update: Update) -> bool:
    query = select(DELIVERIES.c.id).where(DELIVERIES.c.update_id == update.id).limit(1)
    return session.execute(query).first() is not None


def _testers_only(session: Session, update: Update) -> bool:
    """An exercise reaches its test audience (subscribers marked as testers, and the public
    pages with the exercise mark) unless an officer widened it to everyone."""
    incident = session.get(Incident, update.incident_id) if update.incident_id else None
    return incident is not None and incident.exercise and not incident.exercise_widened


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


def _insert_subscribers(
    session: Session,
    update: Update,
    channel_names: list[str],
    *,
    fresh: bool = False,
    testers_only: bool = False,
) -> int:
    now = utcnow()
    everyone = select(
        literal(update.id),
        col(Subscriber.channel),
        literal("s") + cast(col(Subscriber.id), String),
        col(Subscriber.id),
        literal(DeliveryState.pending.value),
        literal(0),
        literal(now, DELIVERIES.c.next_attempt_at.type),
        literal(now, DELIVERIES.c.created_at.type),
        col(Subscriber.language),
    )
    audience = _subscribers(session, update, everyone, channel_names, testers_only=testers_only)
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
    if session.get_bind().dialect.name == "postgresql":
        # The audience's hash joins fit in memory instead of spilling in batches to disk.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    statement = _insert(session).from_select(columns, audience)
    if not fresh:
        statement = statement.on_conflict_do_nothing()
    return rows_matched(session.execute(statement)) or 0


def _subscribers(
    session: Session,
    update: Update,
    columns: Select,
    channel_names: list[str],
    *,
    testers_only: bool,
) -> Select | CompoundSelect:
    """``columns`` of every subscriber the update reaches on those channels: the one audience
    rule, shared by the fan-out and its count."""
    everyone = columns.where(
        col(Subscriber.state) == SubscriberState.active,
        col(Subscriber.channel).in_(channel_names),
        col(Subscriber.min_severity).in_(Severity(update.severity).at_most()),
        col(Subscriber.tester) if testers_only else literal(True),
    )
    if not update.areas:
        return everyone
    no_area, in_area = _area_filters(session, update)
    return union_all(everyone.where(no_area), everyone.where(in_area))


@dataclass(frozen=True)
class Reach:
    """Whom publishing an update would reach on one channel: its broadcast targets (a Telegram
    channel, an account, a partner URL) and its subscribers per language."""

    targets: int = 0
    by_language: dict[str, int] = field(default_factory=dict)

    @property
    def subscribers(self) -> int:
        return sum(self.by_language.values())


def reach(session: Session, update: Update, channels: ChannelSet) -> dict[str, Reach]:
    """What ``expand`` would queue for a first publication of ``update``, per channel, counted
    by the database (one ``GROUP BY`` query; no subscriber row is loaded)."""
    chosen = channels.chosen(update.channels)
    testers_only = _testers_only(session, update)
    targets = {
        c.name: 0 if testers_only and not c.capabilities.own_site else len(c.broadcast_targets())
        for c in chosen
    }
    counted: dict[str, dict[str, int]] = {name: {} for name in targets}
    per_subscriber = [c.name for c in chosen if c.capabilities.per_subscriber]
    if per_subscriber and update.public:
        pairs = select(col(Subscriber.channel), col(Subscriber.language))
        audience = _subscribers(
            session, update, pairs, per_subscriber, testers_only=testers_only
        ).subquery()
        query = select(audience.c.channel, audience.c.language, func.count()).group_by(
            audience.c.channel, audience.c.language
        )
        for channel, language, count in session.execute(query):
            counted[channel][language] = count
    return {name: Reach(targets[name], counted[name]) for name in targets}


def _area_filters(session: Session, update: Update):
    """The update's areas reach the subscribers who chose no area (the whole municipality) and
    those of a related area: two disjoint conditions."""
    codes = areas.related(session, update.areas)
    same_subscriber = col(SubscriberArea.subscriber_id) == col(Subscriber.id)
    has_area = exists().where(same_subscriber)
    in_area = exists().where(and_(same_subscriber, col(SubscriberArea.area_code).in_(codes)))
    return not_(has_area), in_area


def _follow_original(session: Session, update: Update) -> int:
    """A correction or retraction goes to exactly the targets of the update it supersedes, except
    the subscribers who opted out since (an opt-out is honoured, always); its deliveries that had
    not gone out yet are cancelled, so nobody gets the wrong text late (also those claimed and
    waiting in a dispatcher for a provider to come back: it checks before it sends them)."""
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
        not_(
            exists().where(
                col(Subscriber.id) == original.subscriber_id,
                col(Subscriber.state).in_(OPTED_OUT),
            )
        ),
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
