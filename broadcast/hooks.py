"""What the core offers to adapters' inbound routers (``channels.base.InboundHooks``).

Each call is its own unit of work in a worker thread, so an adapter's router never touches the
database or a session itself.
"""

from __future__ import annotations

import asyncio

from sqlmodel import col, select

from broadcast.areas import service as areas
from broadcast.db import Database
from broadcast.delivery import direct, receipts
from broadcast.delivery.channels import ChannelSet
from broadcast.delivery.outbox import view_of
from broadcast.errors import Invalid
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.media import service as media
from broadcast.questions import service as questions
from broadcast.subscribers import service as subscribers
from broadcast.timeline.models import Update, UpdateState
from channels.base import UpdateView


class CoreHooks:
    def __init__(self, db: Database, public_url: str, *, max_attempts: int):
        self.db, self.public_url, self.max_attempts = db, public_url, max_attempts
        self.channels: ChannelSet | None = None  # set once the channels are loaded

    async def _run(self, work):
        def unit():
            with self.db.session_scope() as session:
                return work(session)

        return await asyncio.to_thread(unit)

    async def question(self, *, channel, address, text, language=None, reply_to=None) -> int:
        def work(session):
            incident = session.exec(
                select(Incident)
                .where(Incident.status != IncidentStatus.resolved)
                .order_by(col(Incident.id).desc())
            ).first()
            return questions.receive(
                session,
                channel=channel,
                address=address,
                text=text,
                language=language,
                reply_to=reply_to,
                incident_id=incident.id if incident else None,
            ).id

        return await self._run(work)

    async def subscribe(self, *, channel, address, areas=None, postcode=None, language=None) -> int:
        def work(session):
            codes = list(areas or [])
            if postcode:
                area = areas_for_postcode(session, postcode)
                codes.append(area)
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

        return await self._run(work)

    async def unsubscribe(self, *, channel, address) -> bool:
        def work(session):
            subscriber = subscribers.find(session, channel, address)
            if subscriber is None:
                return False
            subscribers.unsubscribe(session, subscriber, actor=f"resident:{channel}")
            return True

        return await self._run(work)

    async def delivery_status(
        self, *, channel, provider_id, status, error=None, retry_after=None
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
        self, *, channel, address, text, data=None, language=None, ttl_seconds=None
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
                    views.append(view_of(update, incident, self.public_url, shown))
            return views

        return await self._run(work)


def areas_for_postcode(session, postcode: str) -> str:
    area = areas.for_postcode(session, postcode)
    if area is None:
        raise Invalid(f"no area has postcode {postcode!r}")
    return area.code
