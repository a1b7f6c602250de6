"""What residents see of an update on a channel: ``view_of``, and the contents of claimed
deliveries (update views with their media, addresses, the original message a correction
replaces, direct messages). Everything here reads domain tables, so the delivery layer gets it
injected as its ``Renderer`` and never imports it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlmodel import Session, col

from broadcast.common import stored_id, table_of, xml_safe
from broadcast.delivery.jobs import ClaimedRow, Content
from broadcast.delivery.models import Delivery, DirectMessage
from broadcast.incidents.models import Incident
from broadcast.media import service as media_service
from broadcast.questions.models import Question
from broadcast.settings import Settings
from broadcast.subscribers import service as subscribers
from broadcast.subscribers.models import OPTED_OUT, Subscriber
from broadcast.timeline.models import Update
from channels.base import Media, Message, UpdateView

D = table_of(Delivery).c


class UpdateRenderer:
    """The ``delivery.jobs.Renderer`` of this service. It reads the public URL from the
    settings at every claim, as the dispatcher did (tests learn it once their server listens)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def contents(
        self, session: Session, channel: str, rows: Sequence[ClaimedRow]
    ) -> dict[int, Content]:
        public_url = self.settings.public_url
        views = _update_views(session, {r.update_id for r in rows if r.update_id}, public_url)
        keys = {(r.update_id, r.language) for r in rows if r.update_id}
        localized = _with_media(session, views, keys, public_url)
        addresses = _addresses(session, rows)
        directs = _direct_messages(session, rows)
        originals = _original_message_ids(session, channel, rows, views)
        contents = {}
        for row in rows:
            direct_message = directs.get(row.direct_message_id) if row.direct_message_id else None
            update, original_message_id = None, None
            if row.update_id is not None:
                update = localized.get((row.update_id, row.language))
                original_message_id = originals.get((row.update_id, row.target))
            contents[row.id] = Content(
                address=direct_message.address if direct_message else addresses.get(row.id),
                update=update,
                message=_rendered(direct_message, row.language),
                original_message_id=original_message_id,
                expires_at=direct_message.expires_at if direct_message else None,
            )
        return contents

    def recipient_gone(self, session: Session, subscriber_id: int) -> None:
        subscribers.mark_gone(session, subscriber_id)

    def recipient_moved(
        self, session: Session, subscriber_id: int | None, new_address: str | None
    ) -> bool:
        return subscribers.move(session, subscriber_id, new_address)


def _direct_messages(session: Session, rows: Sequence[ClaimedRow]) -> dict[int, DirectMessage]:
    ids = {r.direct_message_id for r in rows if r.direct_message_id}
    if not ids:
        return {}
    found = session.execute(select(DirectMessage).where(col(DirectMessage.id).in_(ids))).scalars()
    return {stored_id(m): m for m in found}


def _rendered(direct_message: DirectMessage | None, language: str) -> Message | None:
    if direct_message is None or direct_message.text is None:
        return None
    return Message(
        update_id=None,
        language=language,
        text=direct_message.text,
        data=dict(direct_message.data or {}),
    )


def _addresses(session: Session, rows: Sequence[ClaimedRow]) -> dict[int, str | None]:
    subscriber_ids = {r.subscriber_id for r in rows if r.subscriber_id}
    question_ids = {r.question_id for r in rows if r.question_id}
    subs: dict[int | None, str | None] = (
        dict(
            session.execute(
                select(col(Subscriber.id), col(Subscriber.address)).where(
                    col(Subscriber.id).in_(subscriber_ids),
                    col(Subscriber.state).not_in(OPTED_OUT),  # who left meanwhile gets nothing
                )
            ).all()
        )
        if subscriber_ids
        else {}
    )
    asks: dict[int | None, str | None] = (
        dict(
            session.execute(
                select(col(Question.id), col(Question.address)).where(
                    col(Question.id).in_(question_ids)
                )
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
    session: Session, channel: str, rows: Sequence[ClaimedRow], views: dict[int, UpdateView]
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
        .outerjoin(Incident, col(Incident.id) == col(Update.incident_id))
        .where(col(Update.id).in_(update_ids))
    ).all()
    return {stored_id(u): view_of(u, i, public_url) for u, i in rows}


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
        id=stored_id(update),
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
