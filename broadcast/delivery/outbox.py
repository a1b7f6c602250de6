"""The outbox: claim due deliveries under a lease, and record what the adapters answered.

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL any number of workers take disjoint batches; SQLite has one writer at a time anyway.
A lease that expires (the worker died) makes its rows due again. Every write-back is guarded by
the claim token, so a worker that lost its lease cannot overwrite a newer claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlmodel import Session

from broadcast.common import utcnow, xml_safe
from broadcast.delivery import receipts
from broadcast.delivery.models import Delivery, DeliveryState, DirectMessage
from broadcast.delivery.policy import backoff, exhausted
from broadcast.incidents.models import Incident
from broadcast.media import service as media_service
from broadcast.questions.models import Question
from broadcast.subscribers import service as subscribers
from broadcast.subscribers.models import Subscriber
from broadcast.timeline.models import Update
from channels.base import Media, Message, UpdateView

D = Delivery.__table__.c


@dataclass(frozen=True)
class Job:
    """One claimed delivery, with everything the adapter call needs: an update to render, or a
    direct message whose text is final."""

    delivery_id: int
    token: str
    channel: str
    target: str  # the row's target key
    address: str | None  # resolved address; None when the subscriber or question is gone
    language: str
    update: UpdateView | None
    attempts: int
    per_subscriber: bool
    original_message_id: str | None = None
    message: Message | None = None  # a direct message, already rendered
    direct_message_id: int | None = None
    expires_at: datetime | None = None  # a direct message not sent by then is not sent at all


@dataclass
class Outcome:
    job: Job
    kind: str  # sent, retry, failed, gone, moved
    provider_id: str | None = None
    delivered: bool = False
    error: str | None = None
    retry_after: float | None = None
    new_address: str | None = None
    at: datetime = field(default_factory=utcnow)


def due_filter(channel: str, now: datetime):
    return and_(
        D.channel == channel,
        or_(
            and_(D.state == DeliveryState.pending, D.next_attempt_at <= now),
            and_(D.state == DeliveryState.sending, D.lease_until < now),
        ),
    )


def claim(
    session: Session, channel: str, *, limit: int, lease_seconds: float, public_url: str
) -> list[Job]:
    now = utcnow()
    token = str(uuid.uuid4())
    lease = now + timedelta(seconds=lease_seconds)
    # Direct messages first: a resident waiting for the bot's answer must not queue behind a
    # broadcast to ten thousand (the index on direct_message_id keeps this query cheap).
    direct = and_(due_filter(channel, now), D.direct_message_id.is_not(None))
    claimed = _claim_rows(session, direct, limit, token, lease)
    if (room := limit - len(claimed)) > 0:
        claimed += _claim_rows(session, due_filter(channel, now), room, token, lease)
    if not claimed:
        return []
    views = _update_views(session, {r.update_id for r in claimed if r.update_id}, public_url)
    keys = {(r.update_id, r.language) for r in claimed if r.update_id}
    localized = _with_media(session, views, keys, public_url)
    addresses = _addresses(session, claimed)
    directs = _direct_messages(session, claimed)
    originals = _original_message_ids(session, channel, claimed, views)
    jobs = []
    for row in claimed:
        direct_message = directs.get(row.direct_message_id)
        jobs.append(
            Job(
                delivery_id=row.id,
                token=token,
                channel=channel,
                target=row.target,
                address=direct_message.address if direct_message else addresses.get(row.id),
                language=row.language,
                update=localized.get((row.update_id, row.language)),
                attempts=row.attempts,
                per_subscriber=row.target[0] in "sqm" and row.target[1:].isdigit(),
                original_message_id=originals.get((row.update_id, row.target)),
                message=_rendered(direct_message, row.language),
                direct_message_id=row.direct_message_id,
                expires_at=direct_message.expires_at if direct_message else None,
            )
        )
    return jobs


def _claim_rows(session: Session, where, limit: int, token: str, lease: datetime) -> list:
    ids = select(D.id).where(where).order_by(D.id).limit(limit).with_for_update(skip_locked=True)
    rows = session.execute(
        update(Delivery.__table__)
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
        )
    ).all()
    return sorted(rows, key=lambda r: r.id)


def _direct_messages(session: Session, rows) -> dict[int, DirectMessage]:
    ids = {r.direct_message_id for r in rows if r.direct_message_id}
    if not ids:
        return {}
    found = session.execute(select(DirectMessage).where(DirectMessage.id.in_(ids))).scalars()
    return {m.id: m for m in found}


def _rendered(direct_message: DirectMessage | None, language: str) -> Message | None:
    if direct_message is None or direct_message.text is None:
        return None
    return Message(
        update_id=None,
        language=language,
        text=direct_message.text,
        data=dict(direct_message.data or {}),
    )


def _addresses(session: Session, rows) -> dict[int, str | None]:
    subscriber_ids = {r.subscriber_id for r in rows if r.subscriber_id}
    question_ids = {r.question_id for r in rows if r.question_id}
    subs = (
        dict(
            session.execute(
                select(Subscriber.id, Subscriber.address).where(Subscriber.id.in_(subscriber_ids))
            ).all()
        )
        if subscriber_ids
        else {}
    )
    asks = (
        dict(
            session.execute(
                select(Question.id, Question.address).where(Question.id.in_(question_ids))
            ).all()
        )
        if question_ids
        else {}
    )
    result: dict[int, str | None] = {}
    for row in rows:
        if row.direct_message_id or row.target.startswith("m") and row.target[1:].isdigit():
            result[row.id] = None  # looked up with the direct message
        elif row.subscriber_id or row.target.startswith("s") and row.target[1:].isdigit():
            result[row.id] = subs.get(row.subscriber_id)
        elif row.question_id or row.target.startswith("q") and row.target[1:].isdigit():
            result[row.id] = asks.get(row.question_id)
        else:
            result[row.id] = row.target
    return result


def _original_message_ids(
    session: Session, channel: str, rows, views
) -> dict[tuple[int, str], str]:
    """For corrections: the provider id of the superseded update's message to the same target."""
    pairs = {
        (r.update_id, views[r.update_id].supersedes)
        for r in rows
        if r.update_id in views and views[r.update_id].supersedes
    }
    if not pairs:
        return {}
    original_of = {uid: sup for uid, sup in pairs}
    found = session.execute(
        select(D.update_id, D.target, D.provider_id).where(
            D.channel == channel,
            D.update_id.in_(set(original_of.values())),
            D.provider_id.is_not(None),
        )
    ).all()
    by_original = {(r.update_id, r.target): r.provider_id for r in found}
    return {
        (uid, r.target): by_original[(sup, r.target)]
        for r in rows
        for uid, sup in original_of.items()
        if r.update_id == uid and (sup, r.target) in by_original
    }


def _update_views(session: Session, update_ids: set[int], public_url: str) -> dict[int, UpdateView]:
    rows = session.execute(
        select(Update, Incident)
        .outerjoin(Incident, Incident.id == Update.incident_id)
        .where(Update.id.in_(update_ids))
    ).all()
    return {u.id: view_of(u, i, public_url) for u, i in rows}


def _with_media(
    session: Session, views: dict[int, UpdateView], keys: set[tuple[int, str]], public_url: str
) -> dict[tuple[int, str], UpdateView]:
    """One view per (update, language): the media's alt text is in the delivery's language."""
    items = media_service.for_updates(session, views)
    return {
        (uid, lang): replace(
            views[uid], media=media_service.for_channels(items.get(uid, ()), lang, public_url)
        )
        for uid, lang in keys
    }


def view_of(
    update: Update,
    incident: Incident | None,
    public_url: str,
    media: tuple[Media, ...] = (),
) -> UpdateView:
    """What adapters see of an update. Text is passed through ``xml_safe`` once more: rows
    written before text was checked at the boundary must not break a channel either."""
    return UpdateView(
        id=update.id,
        kind=update.kind.value,
        severity=str(update.severity),
        body={language: xml_safe(text) for language, text in update.body.items()},
        url=f"{public_url.rstrip('/')}/u/{update.id}",
        incident_title=xml_safe(incident.title) if incident else "",
        incident_slug=incident.slug if incident else "",
        published_at=update.published_at,
        next_update_due=update.next_update_due,
        areas=tuple(update.areas),
        credit=update.credit,
        supersedes=update.supersedes_id,
        media=media,
        exercise=bool(incident and incident.exercise),
    )


def record(
    session: Session,
    outcomes: list[Outcome],
    *,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> None:
    finished_directs = []
    for outcome in outcomes:
        job = outcome.job
        guard = and_(
            D.id == job.delivery_id, D.claim_token == job.token, D.state == DeliveryState.sending
        )
        values = _values_for(outcome, max_attempts, retry_base, retry_cap)
        changed = session.execute(update(Delivery.__table__).where(guard).values(**values)).rowcount
        if not changed:
            continue  # the lease was lost meanwhile; the newer claim owns the row
        if job.direct_message_id and values["state"] != DeliveryState.pending:
            finished_directs.append(job.direct_message_id)
        subscriber_id = _subscriber_of(job)
        if outcome.kind == "gone" and subscriber_id:
            subscribers.mark_gone(session, subscriber_id)
        following = outcome.kind == "moved" and values["state"] == DeliveryState.pending
        if following and not subscribers.move(session, subscriber_id, outcome.new_address):
            # The new address has a subscriber of its own, who gets the update there.
            session.execute(
                update(Delivery.__table__)
                .where(D.id == job.delivery_id)
                .values(state=DeliveryState.failed, last_error=MOVED_TO_SUBSCRIBER)
            )
    if finished_directs:  # personal data: kept no longer than it is needed
        session.execute(
            update(DirectMessage.__table__)
            .where(DirectMessage.id.in_(finished_directs))
            .values(address=None, text=None)
        )
    for channel in {o.job.channel for o in outcomes}:
        sent = [
            o.provider_id
            for o in outcomes
            if o.job.channel == channel and o.kind == "sent" and o.provider_id
        ]
        receipts.apply_early(session, channel, sent, max_attempts=max_attempts)


def renew(session: Session, tokens: set[str], lease_seconds: float) -> None:
    session.execute(
        update(Delivery.__table__)
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
    if outcome.kind == "sent":
        state = DeliveryState.delivered if outcome.delivered else DeliveryState.sent
        return common | {
            "state": state,
            "provider_id": outcome.provider_id,
            "sent_at": outcome.at,
            "last_error": None,
            "delivered_at": outcome.at if outcome.delivered else None,
        }
    if outcome.kind in ("failed", "gone"):
        return common | {"state": DeliveryState.failed}
    if outcome.kind == "moved":
        return common | _moved(outcome, attempts, max_attempts)
    if exhausted(attempts, max_attempts):
        return common | {"state": DeliveryState.dead}
    delay = backoff(attempts, base=base, cap=cap, retry_after=outcome.retry_after)
    return common | {
        "state": DeliveryState.pending,
        "next_attempt_at": outcome.at + timedelta(seconds=delay),
    }


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
    return session.execute(
        select(func.min(D.next_attempt_at)).where(
            D.channel == channel, D.state == DeliveryState.pending
        )
    ).scalar()


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
    return (
        session.execute(
            update(Delivery.__table__)
            .where(
                D.update_id == update_id, D.state.in_([DeliveryState.failed, DeliveryState.dead])
            )
            .values(
                state=DeliveryState.pending, attempts=0, next_attempt_at=utcnow(), last_error=None
            )
        ).rowcount
        or 0
    )
