"""What the core offers to adapters' inbound routers (``channels.base.InboundHooks``).

Each call is its own unit of work in a worker thread, so an adapter's router never touches the
database or a session itself. The core's domain errors that a resident caused leave here as the
refusals of ``channels.errors`` (``UnknownArea``, ...), so adapters match on those types alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from broadcast.areas import service as areas
from broadcast.common import stored_id
from broadcast.db import Database
from broadcast.delivery import direct, receipts
from broadcast.delivery.adapters import ChannelSet
from broadcast.duty import service as duty
from broadcast.errors import Conflict, Invalid
from broadcast.fanout.views import view_of
from broadcast.inbound import service as inbound
from broadcast.incidents import instructions
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.media import service as media
from broadcast.questions import service as questions
from broadcast.settings import Settings
from broadcast.subscribers import service as subscribers
from broadcast.timeline.models import Update, UpdateState
from channels.base import InboundProcessor, UpdateView
from channels.errors import AlreadySubscribed, InvalidInput, UnknownArea

log = logging.getLogger(__name__)
RECOVERY_BATCH = 50


class CoreHooks:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.public_url, self.max_attempts = settings.public_url, settings.max_attempts
        self.lease = timedelta(seconds=settings.lease_seconds)  # of a stored inbound request
        self.channels: ChannelSet | None = None  # set once the channels are loaded
        self._processors: dict[str, InboundProcessor] = {}

    async def _run(self, work):
        return await self.db.run(work)

    # --- inbound requests: stored before they are acknowledged ---------------------------

    async def receive_inbound(
        self, *, channel: str, key: str, payload: dict[str, Any], sender: str | None = None
    ) -> bool:
        def work(session):
            return inbound.store(
                session,
                channel=channel,
                key=key,
                payload=payload,
                sender=sender,
                lease=self.lease,
                settings=self.settings,
            )

        return await self._run(work)

    async def inbound_done(self, *, channel: str, key: str) -> None:
        await self._run(lambda session: inbound.done(session, channel, key))

    def on_inbound(self, channel: str, process: InboundProcessor) -> None:
        self._processors[channel] = process

    @property
    def has_inbound(self) -> bool:
        return bool(self._processors)

    async def recover_inbound(self) -> int:
        """Process stored requests whose process died (their lease ran out); forget keys past
        their time. Safe in every process at once. Returns how many were processed."""
        processed = 0
        while self._processors:
            claimed = await self._run(
                lambda session: inbound.claim(
                    session, list(self._processors), lease=self.lease, limit=RECOVERY_BATCH
                )
            )
            for stored in claimed:
                try:
                    await self._processors[stored.channel](stored.key, stored.payload)
                    await self.inbound_done(channel=stored.channel, key=stored.key)
                    processed += 1
                except Exception:  # left for a later pass, up to inbound.MAX_ATTEMPTS
                    log.exception("processing a stored %s request failed", stored.channel)
            if len(claimed) < RECOVERY_BATCH:
                break
        await self._run(inbound.expire)
        return processed

    async def recover_inbound_forever(self) -> None:
        """``recover_inbound`` at start-up and then every half lease."""
        interval = max(1.0, self.lease.total_seconds() / 2)
        while True:
            try:
                if processed := await self.recover_inbound():
                    log.info("processed %s stored inbound requests", processed)
            except Exception:  # the database is away: try again next time
                log.exception("recovering stored inbound requests failed")
            await asyncio.sleep(interval)

    # --- what residents ask for ---------------------------------------------------------

    async def question(
        self,
        *,
        channel: str,
        address: str,
        text: str,
        language: str | None = None,
        reply_to: str | None = None,
        inbound_key: str | None = None,
    ) -> int:
        def existing(session):
            found = questions.from_inbound(session, channel, inbound_key)
            if found is not None:
                inbound.done(session, channel, inbound_key)
            return found.id if found else None

        def work(session):
            if inbound_key and (found := existing(session)):
                return found
            question = questions.receive(
                session,
                channel=channel,
                address=address,
                text=text,
                language=language,
                reply_to=reply_to,
                incident_id=questions.incident_for(session, channel, address),
                inbound_key=inbound_key,
            )
            if inbound_key:
                inbound.done(session, channel, inbound_key)  # with the question, or neither
            return question.id

        try:
            return await self._run(work)
        except IntegrityError:  # another process made it a moment ago
            if inbound_key and (found := await self._run(existing)):
                return found
            raise

    async def subscribe(
        self,
        *,
        channel: str,
        address: str,
        areas: list[str] | None = None,
        postcode: str | None = None,
        language: str | None = None,
    ) -> int:
        def work(session):
            codes = known_areas(session, list(areas or []), postcode)
            try:
                return subscribers.subscribe(
                    session,
                    channels=self.channels,
                    channel=channel,
                    address=address,
                    area_codes=codes,
                    language=language or "nl",
                    confirmed=True,
                    actor=f"resident:{channel}",
                    update_existing=True,
                ).id
            except Conflict as exc:
                raise AlreadySubscribed(exc.detail) from exc
            except Invalid as exc:
                raise InvalidInput(exc.detail) from exc

        return await self._run(work)

    async def unsubscribe(self, *, channel: str, address: str) -> bool:
        def work(session):
            subscriber = subscribers.find(session, channel, address)
            if subscriber is None:
                return False
            subscribers.unsubscribe(session, subscriber, actor=f"resident:{channel}")
            return True

        return await self._run(work)

    async def link_officer(self, *, channel: str, address: str, code: str) -> bool:
        def work(session):
            return duty.link_chat(session, channel=channel, address=address, code=code)

        return await self._run(work) is not None

    async def delivery_status(
        self,
        *,
        channel: str,
        provider_id: str,
        status: str,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        def work(session):
            return receipts.apply_status(
                session,
                channel=channel,
                provider_id=provider_id,
                status=status,
                error=error,
                retry_after=retry_after,
                max_attempts=self.max_attempts,
            )

        return await self._run(work)

    async def reply(
        self,
        *,
        channel: str,
        address: str,
        text: str,
        data: dict[str, Any] | None = None,
        language: str | None = None,
        ttl_seconds: float | None = None,
    ) -> int:
        def work(session):
            return direct.queue(
                session,
                channel=channel,
                address=address,
                text=text,
                data=data,
                language=language or "nl",
                ttl_seconds=ttl_seconds,
            ).id

        return await self._run(work)

    async def latest(self, language: str) -> list[UpdateView]:
        def work(session):
            views = []
            for incident in session.exec(
                select(Incident).where(Incident.status != IncidentStatus.resolved)
            ):
                update = session.exec(
                    select(Update)
                    .where(
                        Update.incident_id == incident.id,
                        Update.state == UpdateState.published,
                        col(Update.public),
                    )
                    .order_by(col(Update.id).desc())
                ).first()
                if update is not None:
                    items = media.for_update(session, update.id)
                    shown = media.for_channels(items, language, self.public_url)
                    view = view_of(update, incident, self.public_url, shown)
                    pinned = instructions.current(session, stored_id(incident))
                    views.append(replace(view, instruction=pinned.body) if pinned else view)
            return views

        return await self._run(work)


def known_areas(session, codes: list[str], postcode: str | None) -> list[str]:
    """``codes`` and the area of ``postcode``, all checked: ``UnknownArea`` for one that is not
    in the municipality."""
    if postcode:
        area = areas.for_postcode(session, postcode)
        if area is None:
            raise UnknownArea(f"no area has postcode {postcode!r}")
        codes = [*codes, area.code]
    try:
        return areas.check_codes(session, codes)
    except Invalid as exc:
        raise UnknownArea(exc.detail) from exc
