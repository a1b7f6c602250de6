"""The outbox: claim due deliveries under a lease, and record what the adapters answered.

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL any number of workers take disjoint batches; SQLite has one writer at a time anyway.
A lease that expires (the worker died) makes its rows due again. Every write-back is guarded by
the claim token, so a worker that lost its lease cannot overwrite a newer claim.

This module reads only the outbox's own tables: what a row sends, and to which address, comes
from the domain through the injected ``Renderer`` (``broadcast.delivery.jobs``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlmodel import Session

from broadcast.common import rows_matched, table_of, utcnow
from broadcast.delivery import receipts
from broadcast.delivery.jobs import ClaimedRow, Content, Job, Outcome, OutcomeKind, Renderer
from broadcast.delivery.models import Delivery, DeliveryState, DirectMessage
from broadcast.delivery.policy import backoff, exhausted, expired, give_up_at

DELIVERIES = table_of(Delivery)
DIRECTS = table_of(DirectMessage)
D = DELIVERIES.c


def due_filter(channel: str, now: datetime):
    """Every due row of the channel (for reading and counting; claiming takes the cases apart)."""
    return and_(
        D.channel == channel,
        or_(
            and_(D.state == DeliveryState.pending, D.next_attempt_at <= now),
            and_(D.state == DeliveryState.sending, D.lease_until < now),
        ),
    )


# Claiming takes the due rows in three cases, each a walk along an index that stops after
# ``limit`` rows, so a claim costs the same with 100 or 1,000,000 rows waiting (one ``OR`` over
# the cases with ``ORDER BY id`` made both databases read and sort the channel's whole backlog,
# on SQLite inside the write transaction: seconds per batch at a million rows).


# A claim case: its condition, its order and the index SQLite must be told to use (if any).
ClaimCase = tuple[Any, tuple[Any, ...], str | None]


def _direct_replies(channel: str, now: datetime) -> ClaimCase:
    """Pending direct messages (the bot's answers): ``ix_delivery_direct_due``, a partial index
    holding only the rows of direct messages. SQLite is told so (``INDEXED BY``): without
    statistics it rates the full ``ix_delivery_due`` the same and then walks every pending row of
    a broadcast to find none of them direct."""
    where = and_(
        D.channel == channel,
        D.state == DeliveryState.pending,
        D.direct_message_id.is_not(None),
        D.next_attempt_at <= now,
    )
    return where, (D.next_attempt_at, D.id), "ix_delivery_direct_due"


def _expired_claims(channel: str, now: datetime) -> ClaimCase:
    """Rows whose worker lost its lease (it died): the few ``sending`` rows of
    ``ix_delivery_due``. No order: any of them will do, and ordering by id would tempt the
    planner to walk the primary key instead."""
    where = and_(D.channel == channel, D.state == DeliveryState.sending, D.lease_until < now)
    return where, (), None


def _pending_by_due_time(channel: str, now: datetime) -> ClaimCase:
    """Pending rows, earliest due first (in order of creation within the same moment), read in
    the order of ``ix_delivery_due`` (channel, state, next_attempt_at, id)."""
    where = and_(D.channel == channel, D.state == DeliveryState.pending, D.next_attempt_at <= now)
    return where, (D.next_attempt_at, D.id), None


CLAIM_CASES = (_direct_replies, _expired_claims, _pending_by_due_time)


def claim(
    session: Session,
    channel: str,
    *,
    limit: int,
    lease_seconds: float,
    renderer: Renderer,
    ttl_seconds: float | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due rows of the channel; the renderer says what each sends."""
    now = utcnow()
    token = str(uuid.uuid4())
    lease = now + timedelta(seconds=lease_seconds)
    # Direct messages first: a resident waiting for the bot's answer must not queue behind a
    # broadcast to ten thousand; then rows a dead worker left behind; then the backlog.
    claimed: list[ClaimedRow] = []
    for case in CLAIM_CASES:
        if (room := limit - len(claimed)) <= 0:
            break
        claimed += _claim_rows(session, claim_ids(*case(channel, now), room), token, lease)
    if not claimed:
        return []
    contents = renderer.contents(session, channel, claimed)
    return [
        _job(row, contents.get(row.id, NOTHING), channel, token, ttl_seconds) for row in claimed
    ]


NOTHING = Content(address=None)  # nothing to send: the dispatcher fails the row


def _job(
    row: ClaimedRow, content: Content, channel: str, token: str, ttl_seconds: float | None
) -> Job:
    return Job(
        delivery_id=row.id,
        token=token,
        channel=channel,
        target=row.target,
        address=content.address,
        language=row.language,
        update=content.update,
        attempts=row.attempts,
        per_subscriber=row.target[0] in "sqm" and row.target[1:].isdigit(),
        original_message_id=content.original_message_id,
        message=content.message,
        direct_message_id=row.direct_message_id,
        expires_at=content.expires_at,
        give_up_at=None if ttl_seconds is None else give_up_at(row.created_at, ttl_seconds),
    )


def claim_ids(where, order, index: str | None, limit: int):
    """The ids one claim case takes (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""
    ids = select(D.id).where(where).order_by(*order).limit(limit)
    if index is not None:
        ids = ids.with_hint(DELIVERIES, f"INDEXED BY {index}", "sqlite")
    return ids.with_for_update(skip_locked=True)


def _claim_rows(session: Session, ids, token: str, lease: datetime) -> list[ClaimedRow]:
    rows = session.execute(
        update(DELIVERIES)
        .where(D.id.in_(ids.scalar_subquery()))
        .values(state=DeliveryState.sending, claim_token=token, lease_until=lease)
        .returning(
            D.id,
            D.update_id,
            D.target,
            D.subscriber_id,
            D.question_id,
            D.direct_message_id,
            D.language,
            D.attempts,
            D.created_at,
        )
    ).all()
    return sorted((ClaimedRow(*row) for row in rows), key=lambda r: r.id)


def record(
    session: Session,
    outcomes: list[Outcome],
    *,
    renderer: Renderer,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> None:
    finished_directs = []
    # The common case, a send that went out, is one statement for the whole batch
    # (executemany); what needs more than its own row follows one by one.
    plain = [o for o in outcomes if o.kind == OutcomeKind.sent and not o.job.direct_message_id]
    if plain:
        _record_sent(session, plain)
    for outcome in outcomes:
        if outcome.kind == OutcomeKind.sent and not outcome.job.direct_message_id:
            continue
        job = outcome.job
        # A send that went out is recorded even when a correction cancelled the row meanwhile
        # (the truth, and the correction can then edit it); anything else stays cancelled.
        states = [DeliveryState.sending]
        if outcome.kind == OutcomeKind.sent:
            states.append(DeliveryState.cancelled)
        guard = and_(D.id == job.delivery_id, D.claim_token == job.token, D.state.in_(states))
        values = _values_for(outcome, max_attempts, retry_base, retry_cap)
        changed = rows_matched(session.execute(update(DELIVERIES).where(guard).values(**values)))
        if not changed:
            continue  # the lease was lost meanwhile; the newer claim owns the row
        if job.direct_message_id and values["state"] != DeliveryState.pending:
            finished_directs.append(job.direct_message_id)
        subscriber_id = _subscriber_of(job)
        if outcome.kind == OutcomeKind.gone and subscriber_id:
            renderer.recipient_gone(session, subscriber_id)
        following = outcome.kind == OutcomeKind.moved and values["state"] == DeliveryState.pending
        if following and not renderer.recipient_moved(session, subscriber_id, outcome.new_address):
            # The new address has a subscriber of its own, who gets the update there.
            session.execute(
                update(DELIVERIES)
                .where(D.id == job.delivery_id)
                .values(state=DeliveryState.failed, last_error=MOVED_TO_SUBSCRIBER)
            )
    if finished_directs:  # personal data: kept no longer than it is needed
        session.execute(
            update(DIRECTS)
            .where(DIRECTS.c.id.in_(finished_directs))
            .values(address=None, text=None)
        )
    for channel in {o.job.channel for o in outcomes}:
        sent = [
            o.provider_id
            for o in outcomes
            if o.job.channel == channel and o.kind == OutcomeKind.sent and o.provider_id
        ]
        receipts.apply_early(session, channel, sent, max_attempts=max_attempts)


def _record_sent(session: Session, outcomes: list[Outcome]) -> None:
    def param(name: str, column) -> Any:
        return bindparam(name, type_=column.type)

    statement = (
        update(DELIVERIES)
        .where(
            D.id == bindparam("b_id"),
            D.claim_token == bindparam("b_token"),
            # recorded even when a correction cancelled the row meanwhile: it went out
            # (no IN: an expanding parameter cannot be used in an executemany)
            or_(D.state == DeliveryState.sending, D.state == DeliveryState.cancelled),
        )
        .values(
            state=param("b_state", D.state),
            attempts=bindparam("b_attempts"),
            lease_until=None,
            claim_token=None,
            last_error=None,
            provider_id=bindparam("b_provider"),
            sent_at=param("b_sent", D.sent_at),
            delivered_at=param("b_delivered", D.delivered_at),
        )
    )
    session.execute(
        statement,
        [
            {
                "b_id": o.job.delivery_id,
                "b_token": o.job.token,
                "b_state": DeliveryState.delivered if o.delivered else DeliveryState.sent,
                "b_attempts": o.job.attempts + 1,
                "b_provider": o.provider_id,
                "b_sent": o.at,
                "b_delivered": o.at if o.delivered else None,
            }
            for o in outcomes
        ],
    )


def still_claimed(session: Session, tokens: dict[int, str]) -> set[int]:
    """Which of these deliveries (id -> claim token) are still claimed with that token."""
    rows = session.execute(
        select(D.id, D.claim_token).where(D.id.in_(list(tokens)), D.state == DeliveryState.sending)
    )
    return {row.id for row in rows if tokens.get(row.id) == row.claim_token}


def release(session: Session, claims: dict[int, str]) -> None:
    """Give back the leases of claimed rows that were not sent (id -> claim token): due again
    at once, as a dead process's rows are once their lease expires."""
    session.execute(
        update(DELIVERIES)
        .where(
            D.id.in_(list(claims)),
            D.state == DeliveryState.sending,
            D.claim_token.in_(set(claims.values())),  # a newer claim keeps its row
        )
        .values(lease_until=utcnow())
    )


def renew(session: Session, tokens: set[str], lease_seconds: float) -> None:
    session.execute(
        update(DELIVERIES)
        .where(D.claim_token.in_(tokens), D.state == DeliveryState.sending)
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
    )


def _values_for(outcome: Outcome, max_attempts: int, base: float, cap: float) -> dict:
    attempts = outcome.job.attempts + 1
    common = {
        "attempts": attempts,
        "lease_until": None,
        "claim_token": None,
        "last_error": (outcome.error or "")[:500] or None,
    }
    if outcome.kind == OutcomeKind.sent:
        state = DeliveryState.delivered if outcome.delivered else DeliveryState.sent
        return common | {
            "state": state,
            "provider_id": outcome.provider_id,
            "sent_at": outcome.at,
            "last_error": None,
            "delivered_at": outcome.at if outcome.delivered else None,
        }
    if outcome.kind in (OutcomeKind.failed, OutcomeKind.gone):
        return common | {"state": DeliveryState.failed}
    if outcome.kind == OutcomeKind.moved:
        return common | _moved(outcome, attempts, max_attempts)
    give_up = outcome.job.give_up_at
    if expired(give_up, outcome.at) or (give_up is None and exhausted(attempts, max_attempts)):
        return common | {"state": DeliveryState.dead}
    delay = backoff(attempts, base=base, cap=cap, retry_after=outcome.retry_after)
    due = outcome.at + timedelta(seconds=delay)
    if give_up is not None and due > give_up:
        due = give_up  # one last attempt when the time to live ends, then dead
    return common | {"state": DeliveryState.pending, "next_attempt_at": due}


MOVED_TO_SUBSCRIBER = "the chat moved to an address that has a subscriber of its own"


def _moved(outcome: Outcome, attempts: int, max_attempts: int) -> dict:
    """A subscriber's address is followed (at once, counted as an attempt, so a chain of moves
    ends when the attempts run out). A broadcast target's address is the channel's
    configuration, which only the operator can change: retrying it would meet the same answer,
    so it fails at once and says what to do. Never pending for ever."""
    job = outcome.job
    if not job.per_subscriber:
        return {
            "state": DeliveryState.failed,
            "last_error": (
                f"the {job.channel} broadcast target moved to {outcome.new_address}: set the "
                "channel's address setting to the new one and restart (updates published "
                "until then do not reach it)"
            ),
        }
    if _subscriber_of(job) is None or not outcome.new_address:
        return {"state": DeliveryState.failed, "last_error": "the recipient's chat moved"}
    if exhausted(attempts, max_attempts):
        return {
            "state": DeliveryState.failed,
            "last_error": f"the recipient's chat moved {attempts} times; gave up following it",
        }
    return {"state": DeliveryState.pending, "next_attempt_at": outcome.at}


def _subscriber_of(job: Job) -> int | None:
    return int(job.target[1:]) if job.target.startswith("s") and job.target[1:].isdigit() else None


def next_due(session: Session, channel: str) -> datetime | None:
    """When the earliest waiting delivery of the channel becomes due (for the dispatcher's nap)."""
    return session.execute(next_due_query(channel)).scalar()


def next_due_query(channel: str):
    """The first entry of ``ix_delivery_due`` for the channel's pending rows (``ORDER BY …
    LIMIT 1``: an aggregate made SQLite count through every pending row)."""
    return (
        select(D.next_attempt_at)
        .where(D.channel == channel, D.state == DeliveryState.pending)
        .order_by(D.next_attempt_at)
        .limit(1)
    )


def counts_by_state(session: Session, update_id: int | None = None) -> dict[str, dict[str, int]]:
    """``{"<channel>": {"<state>": count}}`` for one update, or for all of them."""
    query = select(D.channel, D.state, func.count()).group_by(D.channel, D.state)
    if update_id is not None:
        query = query.where(D.update_id == update_id)
    result: dict[str, dict[str, int]] = {}
    for channel, state, count in session.execute(query):
        result.setdefault(channel, {})[str(state)] = count
    return result


def requeue_failed(session: Session, update_id: int) -> int:
    """Give failed and dead deliveries of one update a fresh set of attempts."""
    requeued = session.execute(
        update(DELIVERIES)
        .where(D.update_id == update_id, D.state.in_([DeliveryState.failed, DeliveryState.dead]))
        .values(state=DeliveryState.pending, attempts=0, next_attempt_at=utcnow(), last_error=None)
    )
    return rows_matched(requeued) or 0
