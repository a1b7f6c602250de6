"""Scheduler jobs. APScheduler stores jobs by reference (``module:function``) with plain
arguments, so they survive restarts; the running process registers its runtime here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select

from broadcast import audit
from broadcast.common import utcnow
from broadcast.db import Database, emit
from broadcast.delivery import receipts
from broadcast.delivery.adapters import ChannelSet
from broadcast.duty import service as duty
from broadcast.errors import NotFound
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update

if TYPE_CHECKING:
    from broadcast.feeds.poll.polling import FeedPoller

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    db: Database
    channels: ChannelSet
    feeds: FeedPoller | None = None
    max_attempts: int = 8
    public_url: str = ""
    promise_reminder_minutes: float = 0.0


_runtime: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def publish_scheduled() -> list[int]:
    """Publish every scheduled update that is due (one job per update points here)."""
    assert _runtime is not None, "scheduler job ran without a runtime"
    with _runtime.db.session_scope() as session:
        published = timeline.publish_due(session, channels=_runtime.channels)
    if published:
        log.info("published scheduled updates", extra={"updates": published})
    return published


def flag_overdue() -> list[int]:
    """Incidents whose promised next update is late: audit once per promise and tell the console."""
    assert _runtime is not None, "scheduler job ran without a runtime"
    now = utcnow()
    flagged: list[int] = []
    with _runtime.db.session_scope() as session:
        late = session.exec(select(Incident).where(incidents.overdue(now)))
        for incident in late:
            # Stored rows, selected for a due moment in the past: both are set.
            assert incident.id is not None and incident.next_update_due is not None
            due = incident.next_update_due.isoformat()
            subject = f"incident:{incident.id}"
            already = any(
                e.detail.get("due") == due
                for e in audit.recent(session, subject=subject, limit=20)
                if e.action == "incident.overdue"
            )
            if not already:
                audit.record(
                    session, actor="scheduler", action="incident.overdue", subject=subject, due=due
                )
                emit(session, "overdue", incident_id=incident.id, due=due)
                _refresh_open_pages(session, incident)
                flagged.append(incident.id)
    return flagged


def remind_promises() -> list[int]:
    """The leader's reminder job (see ``remind``), every ``overdue_check_seconds``."""
    assert _runtime is not None, "scheduler job ran without a runtime"
    return remind(_runtime, utcnow())


def remind(runtime: Runtime, now: datetime) -> list[int]:
    """Promised updates due within ``promise_reminder_minutes`` of ``now``: the officers on
    duty are told, once per promise (``duty.remind`` records it). Returns the incidents."""
    if runtime.promise_reminder_minutes <= 0:
        return []
    lead = timedelta(minutes=runtime.promise_reminder_minutes)
    chats = set(runtime.channels.active)
    reminded: list[int] = []
    with runtime.db.session_scope() as session:
        for incident in duty.promises_due_soon(session, now, lead):
            assert incident.id is not None  # a stored row
            if duty.remind(session, incident, public_url=runtime.public_url, chat_channels=chats):
                reminded.append(incident.id)
    if reminded:
        log.info("reminded officers of promised updates", extra={"incidents": reminded})
    return reminded


def _refresh_open_pages(session, incident: Incident) -> None:
    """Open pages of the incident show the broken promise at once: the newest public update is
    announced again, and its event carries the promise as it stands."""
    newest = session.exec(
        timeline.published_public().where(col(Update.incident_id) == incident.id).limit(1)
    ).first()
    if newest is not None:
        emit(session, "live", update_id=newest[0].id, slug=incident.slug)


def sweep_receipts() -> int:
    """Apply status callbacks that are still waiting although their delivery exists (the
    safety net behind ``receipts``' locking; see there)."""
    assert _runtime is not None, "scheduler job ran without a runtime"
    with _runtime.db.session_scope() as session:
        applied = receipts.sweep(session, max_attempts=_runtime.max_attempts)
    if applied:
        log.warning("applied %d stranded status callbacks", applied)
    return applied


def poll_feed(source_id: int) -> str | None:
    """Poll one feed source (one interval job per source points here). Failures are recorded on
    the source by the poller; a source removed meanwhile is skipped until the jobs are synced."""
    assert _runtime is not None and _runtime.feeds is not None, "poll job ran without a runtime"
    try:
        return _runtime.feeds.poll(source_id, scheduled=True).outcome
    except NotFound:
        return None
