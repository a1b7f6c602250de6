"""Subscribers: residents and partner systems who get updates on one channel for their areas."""

from __future__ import annotations

from sqlmodel import Session, col, delete, select, update

from broadcast import audit
from broadcast.areas import service as areas
from broadcast.common import Language, Severity, stored_id, utcnow
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.models import Delivery
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.i18n import _
from broadcast.inbound import service as inbound
from broadcast.questions.models import Question
from broadcast.settings import Settings
from broadcast.subscribers.models import Subscriber, SubscriberArea, SubscriberState


def subscribe(
    session: Session,
    *,
    channels: ChannelSet,
    channel: str,
    address: str,
    area_codes: list[str],
    language: str = "nl",
    min_severity: str = "info",
    tester: bool | None = None,
    confirmed: bool = True,
    actor: str = "api",
    update_existing: bool = False,
) -> Subscriber:
    """Add a subscriber, or re-activate one that left. An active one is a conflict for the API;
    a resident writing to the bot again (``update_existing``) changes their areas and language."""
    normalized = normalize(channels, channel, address)
    codes = areas.check_codes(session, area_codes)
    subscriber = find(session, channel, normalized)
    active = subscriber is not None and subscriber.state == SubscriberState.active
    if subscriber is not None and active and confirmed and not update_existing:
        raise Conflict(
            _("subscriber %(id)s exists already on %(channel)s"), id=subscriber.id, channel=channel
        )
    if subscriber is None:
        subscriber = Subscriber(channel=channel, address=normalized)
    subscriber.language = Language(language)
    subscriber.min_severity = Severity(min_severity)
    if tester is not None:  # None: as it was (a resident writing again stays a tester)
        subscriber.tester = tester
    subscriber.state = SubscriberState.active if confirmed else SubscriberState.pending
    subscriber.consent_at = utcnow() if confirmed else None
    session.add(subscriber)
    session.flush()
    set_areas(session, subscriber, codes)
    audit.record(
        session,
        actor=actor,
        action="subscriber.subscribe",
        subject=f"subscriber:{subscriber.id}",
        channel=channel,
    )
    return subscriber


def normalize(channels: ChannelSet, channel: str, address: str) -> str:
    if channel not in channels:
        reason = channels.disabled.get(channel)
        if reason:
            raise Invalid(
                _("channel %(channel)s is not available: %(reason)s"),
                channel=repr(channel),
                reason=reason,
            )
        raise Invalid(_("channel %(channel)s is not available"), channel=repr(channel))
    adapter = channels[channel]
    if not adapter.capabilities.per_subscriber:
        raise Invalid(_("channel %(channel)s has no individual subscribers"), channel=repr(channel))
    try:
        return adapter.normalize_address(address)
    except ValueError as exc:
        raise Invalid(
            _("invalid address for %(channel)s: %(reason)s"), channel=channel, reason=str(exc)
        ) from exc


def set_areas(session: Session, subscriber: Subscriber, codes: list[str]) -> None:
    subscriber_id = stored_id(subscriber)
    session.exec(delete(SubscriberArea).where(col(SubscriberArea.subscriber_id) == subscriber_id))
    session.add_all(SubscriberArea(subscriber_id=subscriber_id, area_code=c) for c in codes)
    session.flush()


def area_codes(session: Session, subscriber_id: int) -> list[str]:
    query = select(SubscriberArea.area_code).where(SubscriberArea.subscriber_id == subscriber_id)
    return sorted(session.exec(query))


def find(session: Session, channel: str, address: str) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.channel == channel, Subscriber.address == address)
    return session.exec(query).first()


def get(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(_("subscriber %(id)s not found"), id=subscriber_id)
    return subscriber


def unsubscribe(session: Session, subscriber: Subscriber, *, actor: str) -> None:
    subscriber.state = SubscriberState.unsubscribed
    session.add(subscriber)
    audit.record(
        session, actor=actor, action="subscriber.unsubscribe", subject=f"subscriber:{subscriber.id}"
    )


def erase(
    session: Session, subscriber: Subscriber, *, actor: str, settings: Settings | None = None
) -> None:
    """Delete the person's data. Delivery rows keep counts, not the link (ON DELETE SET NULL);
    their questions stay in the inbox without the address they came from, and their messages
    not yet processed are dropped."""
    subscriber_id = subscriber.id
    session.exec(
        update(Question)
        .where(
            col(Question.channel) == subscriber.channel,
            col(Question.address) == subscriber.address,
        )
        .values(address=None)
    )
    inbound.forget_sender(session, subscriber.channel, subscriber.address, settings)
    session.exec(delete(SubscriberArea).where(col(SubscriberArea.subscriber_id) == subscriber_id))
    session.exec(  # no foreign key on the outbox (see Delivery): what ON DELETE SET NULL did
        update(Delivery)
        .where(col(Delivery.subscriber_id) == subscriber_id)
        .values(subscriber_id=None)
    )
    session.delete(subscriber)
    audit.record(
        session, actor=actor, action="subscriber.erase", subject=f"subscriber:{subscriber_id}"
    )
    session.flush()


def mark_gone(session: Session, subscriber_id: int) -> None:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is not None and subscriber.state == SubscriberState.active:
        subscriber.state = SubscriberState.gone
        session.add(subscriber)
        audit.record(
            session,
            actor="provider",
            action="subscriber.gone",
            subject=f"subscriber:{subscriber_id}",
        )


def move(session: Session, subscriber_id: int | None, new_address: str | None) -> bool:
    """The provider says the subscriber's chat has a new address (Telegram: a group became a
    supergroup). False when another subscriber has that address already: this one is then
    marked gone, so nobody gets an update twice."""
    subscriber = session.get(Subscriber, subscriber_id) if subscriber_id else None
    if subscriber is None or not new_address:
        return True  # erased meanwhile: nothing to follow
    if subscriber.address == new_address:
        return True
    if find(session, subscriber.channel, new_address) is not None:
        mark_gone(session, stored_id(subscriber))
        return False
    subscriber.address = new_address
    session.add(subscriber)
    audit.record(
        session, actor="provider", action="subscriber.moved", subject=f"subscriber:{subscriber.id}"
    )
    return True
