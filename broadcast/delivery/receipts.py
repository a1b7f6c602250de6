"""Provider status callbacks (Twilio's delivered/undelivered/failed) move a delivery on.

A failure the provider reports later for a passing reason (Twilio's 14107: too many messages
to one number just now) is not final: the adapter passes ``retry_after`` and the delivery is
due again then, as long as it has attempts left, exactly as if the send itself had been
refused.

A delivery only moves forward: a receipt concerns a message believed ``sent``, and a final state
(delivered, failed, dead) stays final, so a late or replayed callback (``undelivered`` arriving
after ``delivered``) changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

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
