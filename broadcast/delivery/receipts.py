"""Provider status callbacks (Twilio's delivered/undelivered/failed) move a delivery on.

A failure the provider reports later for a passing reason (Twilio's 14107: too many messages
to one number just now) is not final: the adapter passes ``retry_after`` and the delivery is
due again then, as long as it has attempts left, exactly as if the send itself had been
refused.

A delivery only moves forward: a receipt concerns a message believed ``sent``, and a final state
(delivered, failed, dead) stays final, so a late or replayed callback (``undelivered`` arriving
after ``delivered``) changes nothing.

Exactly once, whatever the interleaving. A callback can arrive while the send's write-back is
in flight in another process; under READ COMMITTED the callback then sees no delivery with that
provider id (the write-back is not committed) and files an early receipt, while the write-back's
``apply_early`` sees no early receipt (the callback is not committed either): the receipt would
be stranded. So on PostgreSQL both sides first take a transaction-scoped advisory lock per
provider message id (``pg_advisory_xact_lock``, namespace ``RECEIPT_LOCKS``): whichever comes
second waits for the first to commit and its next statement sees the first one's rows. SQLite
has one writer at a time (``BEGIN IMMEDIATE``), which serialises them already. ``sweep`` is the
safety net (a scheduler job): it applies any early receipt whose delivery exists by now and
drops those that never found one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlmodel import Session, col, delete, select

from broadcast.common import utcnow
from broadcast.db import emit
from broadcast.delivery.models import Delivery, DeliveryState, EarlyReceipt
from broadcast.delivery.policy import exhausted

FINAL_STATUSES = {
    "delivered": DeliveryState.delivered,
    "read": DeliveryState.delivered,
    "undelivered": DeliveryState.failed,
    "failed": DeliveryState.failed,
}


def apply_status(
    session: Session,
    *,
    channel: str,
    provider_id: str,
    status: str,
    error: str | None,
    retry_after: float | None = None,
    max_attempts: int,
) -> bool:
    """Returns False only for a status that means nothing final (queued, sent)."""
    if status not in FINAL_STATUSES:
        return False
    _lock(session, channel, [provider_id])
    query = select(Delivery).where(Delivery.channel == channel, Delivery.provider_id == provider_id)
    delivery = session.exec(query).first()
    if delivery is None:
        session.merge(
            EarlyReceipt(
                provider_id=provider_id,
                channel=channel,
                status=status,
                error=error,
                retry_after=retry_after,
            )
        )
        return True
    _move(session, delivery, status, error, retry_after, max_attempts)
    return True


def apply_early(
    session: Session, channel: str, provider_ids: list[str], *, max_attempts: int
) -> None:
    """Called when sends are recorded: statuses that arrived first are applied now."""
    if not provider_ids:
        return
    _lock(session, channel, provider_ids)
    early = session.exec(
        select(EarlyReceipt).where(
            EarlyReceipt.channel == channel, col(EarlyReceipt.provider_id).in_(provider_ids)
        )
    ).all()
    for receipt in early:
        query = select(Delivery).where(
            Delivery.channel == channel, Delivery.provider_id == receipt.provider_id
        )
        if (delivery := session.exec(query).first()) is not None:
            _move(
                session, delivery, receipt.status, receipt.error, receipt.retry_after, max_attempts
            )
        session.delete(receipt)


RECEIPT_LOCKS = 7_141_023  # the advisory lock namespace (classid) of provider message ids
EARLY_RECEIPT_DAYS = 7  # an early receipt whose send never shows up is dropped after this


def _lock(session: Session, channel: str, provider_ids: list[str]) -> None:
    """PostgreSQL: serialise with every other transaction handling these provider ids, until
    this one ends. Sorted, so two transactions locking several ids cannot deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({f"{channel}:{provider_id}" for provider_id in provider_ids}):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
            {"namespace": RECEIPT_LOCKS, "key": key},
        )


def sweep(session: Session, *, max_attempts: int, batch: int = 500) -> int:
    """Apply early receipts whose delivery exists by now (none should: this is the safety
    net) and drop those older than ``EARLY_RECEIPT_DAYS``; returns how many were applied."""
    pairs = session.exec(
        select(EarlyReceipt.channel, EarlyReceipt.provider_id)
        .join(
            Delivery,
            (col(Delivery.channel) == col(EarlyReceipt.channel))
            & (col(Delivery.provider_id) == col(EarlyReceipt.provider_id)),
        )
        .limit(batch)
    ).all()
    by_channel: dict[str, list[str]] = {}
    for channel, provider_id in pairs:
        by_channel.setdefault(channel, []).append(provider_id)
    for channel, provider_ids in by_channel.items():
        apply_early(session, channel, provider_ids, max_attempts=max_attempts)
    cutoff = utcnow() - timedelta(days=EARLY_RECEIPT_DAYS)
    session.exec(delete(EarlyReceipt).where(col(EarlyReceipt.received_at) < cutoff))
    return len(pairs)


def _move(
    session: Session,
    delivery: Delivery,
    status: str,
    error: str | None,
    retry_after: float | None,
    max_attempts: int,
) -> None:
    if delivery.state != DeliveryState.sent:
        return
    delivery.last_error = error
    if retry_after is not None and _can_retry(delivery, max_attempts):
        delivery.state = DeliveryState.pending
        delivery.next_attempt_at = utcnow() + timedelta(seconds=retry_after)
        delivery.provider_id = None  # the next attempt is a new message with an id of its own
        emit(session, "requeued", update_id=delivery.update_id)
    else:
        delivery.state = FINAL_STATUSES[status]
    if delivery.state == DeliveryState.delivered:
        delivery.delivered_at = utcnow()
    session.add(delivery)


def _can_retry(delivery: Delivery, max_attempts: int) -> bool:
    """Only a delivery still believed sent, that is an update (a direct message's address and
    text are erased once it was sent) and has attempts left."""
    return (
        delivery.state == DeliveryState.sent
        and delivery.direct_message_id is None
        and not exhausted(delivery.attempts, max_attempts)
    )
