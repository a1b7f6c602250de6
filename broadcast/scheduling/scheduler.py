"""APScheduler 3 with its jobs in the database, run by exactly one leader.

``BackgroundScheduler``, not ``AsyncIOScheduler``: the job store's queries are blocking, and on
the event loop they would stall every request while SQLite's write lock is held.

On PostgreSQL the leader is whoever holds an advisory lock on a dedicated connection; when that
process dies, its connection closes, the lock is released and another process takes over. The
embedded SQLite mode is one process, which is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, text
from sqlmodel import select

from broadcast.db import Database
from broadcast.delivery.adapters import ChannelSet
from broadcast.feeds.poll import schedule as feed_schedule
from broadcast.feeds.poll.polling import FeedPoller
from broadcast.scheduling import jobs
from broadcast.settings import Settings
from broadcast.timeline.models import Update, UpdateState

log = logging.getLogger(__name__)
LEADER_LOCK = 7_141_022
LEADERSHIP_RETRY_SECONDS = 5
PUBLISH_JOB = "broadcast.scheduling.jobs:publish_scheduled"
SWEEP_JOB = "broadcast.scheduling.jobs:sweep_receipts"
REMIND_JOB = "broadcast.scheduling.jobs:remind_promises"


class Scheduler:
    def __init__(self, db: Database, channels: ChannelSet, settings: Settings):
        self.db, self.channels, self.settings = db, channels, settings
        self.scheduler: BackgroundScheduler | None = None
        self._task: asyncio.Task | None = None
        self._in_flight: asyncio.Future | None = None  # thread work that outlives a cancel
        self._lock_connection: Connection | None = None  # holds the leader lock
        self._feeds: FeedPoller | None = None

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight is not None:  # let a half-done _try_lead or _begin finish first
            with contextlib.suppress(Exception):
                await self._in_flight
        if self.scheduler is not None:
            with contextlib.suppress(SchedulerNotRunningError):
                await asyncio.to_thread(self.scheduler.shutdown, wait=False)
            self.scheduler = None
        jobs.install(None)
        if self._feeds is not None:
            self._feeds.close()
            self._feeds = None
        if self._lock_connection is not None:
            await asyncio.to_thread(self._resign)

    async def _run(self) -> None:
        while True:
            while not await self._in_thread(self._try_lead):
                await asyncio.sleep(LEADERSHIP_RETRY_SECONDS)
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the scheduler failed; stepping down")
            await self._in_thread(self._step_down)
            await asyncio.sleep(LEADERSHIP_RETRY_SECONDS)

    async def _lead(self) -> None:
        """Run the scheduler until the leader lock's connection is lost (PostgreSQL restarted,
        or the network to it): then the lock is gone too and another process may lead."""
        with self.db.bus.subscribe() as events:  # before _begin: no change falls in between
            await self._in_thread(self._begin)
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow this
                    # task's cancellation when an event arrives at the same moment (stop hangs).
                    async with asyncio.timeout(LEADERSHIP_RETRY_SECONDS):
                        event = await events.get()
                except TimeoutError:
                    if not await self._in_thread(self._still_leading):
                        log.warning("lost the scheduler's leader lock (database connection)")
                        return
                    continue
                if event.get("kind") == "scheduled":
                    await asyncio.to_thread(self._schedule_all)
                elif event.get("kind") == "feeds":
                    await asyncio.to_thread(self.sync_feeds)
                elif event.get("kind") == "listening" and self.db.is_postgres:
                    # LISTEN was re-established: events may have been missed meanwhile.
                    await asyncio.to_thread(self._schedule_all)

    def _still_leading(self) -> bool:
        connection = self._lock_connection
        if connection is None:
            return True  # SQLite: the one process always leads
        try:
            connection.execute(text("SELECT 1"))
            connection.commit()
            return True
        except Exception:
            return False

    def _step_down(self) -> None:
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
            self.scheduler = None
        jobs.install(None)
        if self._feeds is not None:
            self._feeds.close()
            self._feeds = None
        if self._lock_connection is not None:
            self._resign()

    async def _in_thread(self, work):
        """Blocking work in a thread, shielded: a cancel must not leave a lock or a started
        scheduler behind that ``stop`` does not know about."""
        self._in_flight = asyncio.ensure_future(asyncio.to_thread(work))
        return await asyncio.shield(self._in_flight)

    def _resign(self) -> None:
        """Release the lock explicitly: a pooled connection would keep holding it."""
        connection = self._lock_connection
        assert connection is not None, "resigning without the lock"
        with contextlib.suppress(Exception):
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            connection.commit()
        connection.invalidate()
        connection.close()
        self._lock_connection = None

    def _try_lead(self) -> bool:
        if not self.db.is_postgres:
            return True
        try:
            connection = self.db.engine.connect()
        except Exception as exc:  # the database is down: try again later
            log.warning("no scheduler leadership: %s", type(exc).__name__)
            return False
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}
            ).scalar()
            connection.commit()
        except Exception as exc:
            log.warning("no scheduler leadership: %s", type(exc).__name__)
            connection.invalidate()
            connection.close()
            return False
        if got:
            self._lock_connection = connection
        else:
            connection.close()
        return bool(got)

    def _begin(self) -> None:
        self._feeds = FeedPoller(self.db, self.channels, self.settings)
        jobs.install(
            jobs.Runtime(
                db=self.db,
                channels=self.channels,
                feeds=self._feeds,
                max_attempts=self.settings.max_attempts,
                public_url=self.settings.public_url,
                promise_reminder_minutes=self.settings.promise_reminder_minutes,
            )
        )
        store = SQLAlchemyJobStore(engine=self.db.engine, tablename="apscheduler_jobs")
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store},
            executors={
                "default": ThreadPoolExecutor(10),
                feed_schedule.EXECUTOR: ThreadPoolExecutor(max(1, self.settings.feed_concurrency)),
            },
            timezone="UTC",
            job_defaults={"coalesce": True, "misfire_grace_time": None},
        )
        self.scheduler.add_job(
            "broadcast.scheduling.jobs:flag_overdue",
            "interval",
            seconds=self.settings.overdue_check_seconds,
            id="flag-overdue",
            replace_existing=True,
        )
        self.scheduler.add_job(
            REMIND_JOB,
            "interval",
            seconds=self.settings.overdue_check_seconds,
            id="remind-promises",
            replace_existing=True,
        )
        self.scheduler.start()
        self._sweep_receipts()
        self._schedule_all()
        self.sync_feeds()
        log.info("scheduler started as leader")

    def _sweep_receipts(self) -> None:
        """The receipts' safety net, every ``receipt_sweep_seconds`` (0: off, and a job stored
        by an earlier start is removed)."""
        assert self.scheduler is not None
        if self.settings.receipt_sweep_seconds > 0:
            self.scheduler.add_job(
                SWEEP_JOB,
                "interval",
                seconds=self.settings.receipt_sweep_seconds,
                id="sweep-receipts",
                replace_existing=True,
            )
        else:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job("sweep-receipts")

    def sync_feeds(self) -> None:
        """One poll job per enabled feed source (see ``broadcast.feeds.poll.schedule``)."""
        if self.scheduler is not None:
            feed_schedule.sync_jobs(self.scheduler, self.db, self.settings)

    def _schedule_all(self) -> None:
        """One date job per scheduled update (idempotent), plus publishing anything overdue."""
        with self.db.session_scope() as session:
            pending = session.exec(
                select(Update.id, Update.publish_at).where(Update.state == UpdateState.scheduled)
            ).all()
        for update_id, publish_at in pending:
            # Stored rows; an update is scheduled only with a publish_at (timeline.publish).
            assert update_id is not None and publish_at is not None
            self.add_publication(update_id, publish_at)

    def add_publication(self, update_id: int, publish_at: datetime) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(
            PUBLISH_JOB,
            "date",
            run_date=publish_at,
            id=f"publish-update-{update_id}",
            replace_existing=True,
        )
