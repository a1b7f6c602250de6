"""Poll jobs in APScheduler's persistent job store: one interval job per enabled source.

A job that already matches its source is left alone, so its next run time survives a restart
(and a poll that fell due while no process ran fires once at start, coalesced). Jobs run on the
``feeds`` executor, a thread pool of ``feed_concurrency`` threads: the concurrency limit. Each
run is delayed by a random jitter of at most ``feed_jitter_seconds`` (and at most a fifth of the
interval), so sources added together do not poll in lockstep.
"""

from __future__ import annotations

import random
from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from sqlmodel import col, select

from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.feeds.models import FeedSource
from broadcast.settings import Settings

POLL_JOB = "broadcast.scheduling.jobs:poll_feed"
PREFIX = "feed-poll-"
EXECUTOR = "feeds"


def jitter_for(interval: int, settings: Settings) -> int:
    return max(0, int(min(settings.feed_jitter_seconds, interval / 5)))


def sync_jobs(scheduler: BaseScheduler, db: Database, settings: Settings) -> dict[str, int]:
    with db.session_scope() as session:
        wanted = {
            f"{PREFIX}{source_id}": (source_id, interval)
            for source_id, interval in session.exec(
                select(FeedSource.id, FeedSource.interval_seconds).where(col(FeedSource.enabled))
            )
        }
    jobs = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(PREFIX)}
    added = removed = 0
    for job_id in list(jobs):
        if job_id not in wanted:
            scheduler.remove_job(job_id)
            removed += 1
    for job_id, (source_id, interval) in wanted.items():
        jitter = jitter_for(interval, settings)
        job = jobs.get(job_id)
        trigger = getattr(job, "trigger", None)
        if (
            job is not None
            and getattr(trigger, "interval", None) == timedelta(seconds=interval)
            and getattr(trigger, "jitter", None) == (jitter or None)
        ):
            continue
        # A new source polls soon (spread over its first jitter), not one interval from now.
        first = utcnow() + timedelta(seconds=random.uniform(0, max(jitter, 1)))
        scheduler.add_job(
            POLL_JOB,
            "interval",
            seconds=interval,
            jitter=jitter or None,
            args=[source_id],
            id=job_id,
            executor=EXECUTOR,
            max_instances=1,
            replace_existing=True,
            next_run_time=first,
        )
        added += 1
    return {"added": added, "removed": removed, "jobs": len(wanted)}
