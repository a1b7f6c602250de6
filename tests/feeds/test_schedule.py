"""Poll jobs: one per enabled source in the persistent job store, with jitter, on a thread pool
that limits how many polls run at once, and kept (with their next run time) across restarts."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient

from broadcast.feeds import service
from broadcast.feeds.models import FeedSource
from broadcast.feeds.poll import schedule
from tests.feeds.conftest import World, at, feed_settings, gauge_rss
from tests.support import wait_for


def paused_scheduler(world: World) -> BackgroundScheduler:
    """A scheduler on the world's job store that never runs a job."""
    store = SQLAlchemyJobStore(engine=world.db.engine, tablename="apscheduler_jobs")
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
    scheduler.start(paused=True)
    return scheduler


def test_each_enabled_source_gets_one_job_that_survives_a_restart(settings):
    world = World(feed_settings(settings, feed_jitter_seconds=30))
    first = world.add("http://127.0.0.1:9/a.xml", interval_seconds=600)
    second = world.add("http://127.0.0.1:9/b.xml", interval_seconds=3600)
    scheduler = paused_scheduler(world)
    assert schedule.sync_jobs(scheduler, world.db, world.settings)["added"] == 2
    job = scheduler.get_job(f"feed-poll-{first}")
    assert (job.executor, job.max_instances, job.args) == ("feeds", 1, (first,))
    assert (job.trigger.interval, job.trigger.jitter) == (timedelta(seconds=600), 30)
    assert job.next_run_time <= at(0) + timedelta(seconds=31)  # a new source polls soon
    planned = job.next_run_time
    scheduler.shutdown(wait=False)

    restarted = paused_scheduler(world)  # another process, the same job store
    assert schedule.sync_jobs(restarted, world.db, world.settings)["added"] == 0
    assert restarted.get_job(f"feed-poll-{first}").next_run_time == planned

    with world.db.session_scope() as session:
        session.get(FeedSource, first).interval_seconds = 120
        session.get(FeedSource, second).enabled = False
    assert schedule.sync_jobs(restarted, world.db, world.settings) == {
        "added": 1,
        "removed": 1,
        "jobs": 1,
    }
    job = restarted.get_job(f"feed-poll-{first}")
    assert (job.trigger.interval, job.trigger.jitter) == (timedelta(seconds=120), 24)
    assert restarted.get_job(f"feed-poll-{second}") is None
    restarted.shutdown(wait=False)
    world.close()


def test_the_scheduler_polls_sources_with_at_most_the_configured_concurrency(settings, feed_server):
    from broadcast.app import create_app
    from channels.platform import PlatformChannel

    for n in range(6):
        feed_server.state.put(f"/g{n}.xml", gauge_rss([(at(-1), f"{1000 + n} cm")]), delay=0.5)
    app = create_app(
        feed_settings(settings, feed_concurrency=2, feed_jitter_seconds=1),
        channel_classes=[PlatformChannel],
    )
    with TestClient(app):
        world = World(app.state.settings)
        ids = []
        with app.state.db.session_scope() as session:  # the app's own bus hears the change
            for n in range(6):
                source = service.create(
                    session,
                    url=feed_server.url_for(f"/g{n}.xml"),
                    kind="level",
                    interval_seconds=3600,
                    min_interval=1,
                    allow_private=True,
                )
                session.flush()
                ids.append(source.id)

        def all_polled():
            return all(world.source(i).last_polled_at is not None for i in ids)

        wait_for(all_polled)
        assert [len(world.readings(i)) for i in ids] == [1] * 6
        assert feed_server.state.max_in_flight == 2
        world.close()
