"""Rows written straight into the store, so a fan-out function is tested on its own."""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast.common import utcnow
from broadcast.delivery.models import Delivery
from broadcast.incidents.models import Incident
from broadcast.subscribers.models import Subscriber, SubscriberArea
from broadcast.timeline.models import Update, UpdateState


def incident(session: Session, **fields) -> Incident:
    values = {"slug": "hoogwater-maas", "title": "Hoogwater Maas", "severity": "warning"}
    return _stored(session, Incident(**(values | fields)))


def published(session: Session, incident: Incident, **fields) -> Update:
    values = {
        "incident_id": incident.id,
        "state": UpdateState.published,
        "body": {"nl": "Dijkbewaking bij Mook.", "en": "Dike watch at Mook."},
        "severity": "warning",
        "published_at": utcnow(),
    }
    return _stored(session, Update(**(values | fields)))


def subscriber(session: Session, address: str, areas: tuple[str, ...] = (), **fields) -> Subscriber:
    row = _stored(session, Subscriber(channel="webhook", address=address, **fields))
    session.add_all(SubscriberArea(subscriber_id=row.id, area_code=code) for code in areas)
    session.flush()
    return row


def deliveries(session: Session, update: Update) -> list[Delivery]:
    query = select(Delivery).where(Delivery.update_id == update.id).order_by(Delivery.id)
    return list(session.exec(query))


def _stored(session: Session, row):
    session.add(row)
    session.flush()
    return row
