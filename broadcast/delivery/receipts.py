"""Provider status callbacks (Twilio's delivered/undelivered/failed) move a delivery on."""

from __future__ import annotations

from sqlmodel import Session, col, select

from broadcast.common import utcnow
from broadcast.delivery.models import Delivery, DeliveryState, EarlyReceipt

FINAL_STATUSES = {
    "delivered": DeliveryState.delivered,
    "read": DeliveryState.delivered,
    "undelivered": DeliveryState.failed,
    "failed": DeliveryState.failed,
}


def apply_status(
    session: Session, *, channel: str, provider_id: str, status: str, error: str | None
) -> bool:
    """Returns False only for a status that means nothing final (queued, sent)."""
    if status not in FINAL_STATUSES:
        return False
    query = select(Delivery).where(Delivery.channel == channel, Delivery.provider_id == provider_id)
    delivery = session.exec(query).first()
    if delivery is None:
        session.merge(
            EarlyReceipt(provider_id=provider_id, channel=channel, status=status, error=error)
        )
        return True
    _move(session, delivery, status, error)
    return True


def apply_early(session: Session, channel: str, provider_ids: list[str]) -> None:
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
            _move(session, delivery, receipt.status, receipt.error)
        session.delete(receipt)


def _move(session: Session, delivery: Delivery, status: str, error: str | None) -> None:
    delivery.state = FINAL_STATUSES[status]
    if delivery.state == DeliveryState.delivered:
        delivery.delivered_at = utcnow()
    delivery.last_error = error
    session.add(delivery)
