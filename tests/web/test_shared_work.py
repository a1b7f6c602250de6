"""Work shared by concurrent callers: the ``/healthz`` database probe, the page cache's
stale-while-revalidate, and ``Database.run`` refusing to hand live results to the event loop.
Clocks are injected; waits are on events, never on time."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from broadcast.db import Database
from broadcast.web.cache import PublicCache
from broadcast.web.ops import DatabaseProbe


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_of_probes_asks_the_database_once():
    release, calls = asyncio.Event(), []

    async def query():
        calls.append(1)
        await release.wait()

    clock = Clock()
    probe = DatabaseProbe(query, clock=clock)
    waiting = [asyncio.ensure_future(probe.status()) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["ok"] * 50
    assert probe.queries == 1
    assert await probe.status() == "ok" and probe.queries == 1  # within the interval: kept
    clock.now += 1.0
    assert await probe.status() == "ok" and probe.queries == 2  # a second later: asked again


async def test_a_failing_database_is_reported_and_asked_again_after_the_interval():
    answers = [RuntimeError("down"), None]

    async def query():
        if (answer := answers.pop(0)) is not None:
            raise answer

    clock = Clock()
    probe = DatabaseProbe(query, clock=clock)
    assert await probe.status() == "unavailable: RuntimeError"
    assert await probe.status() == "unavailable: RuntimeError"
    clock.now += 1.0
    assert await probe.status() == "ok"


async def test_an_aged_out_page_is_served_while_one_re_render_runs():
    clock, release, renders = Clock(), asyncio.Event(), []

    async def render():
        renders.append(1)
        if len(renders) > 1:
            await release.wait()
        return f"version {len(renders)}".encode(), "text/html"

    cache = PublicCache(time_to_live=30.0, clock=clock)
    first = await cache.get("page", render)
    clock.now += 31.0  # aged out: nothing changed, only the clock moved
    served = await asyncio.gather(*(cache.get("page", render) for _ in range(20)))
    assert {doc.body for doc in served} == {b"version 1"}  # nobody waited for the re-render
    assert len(renders) == 2  # and only one was started
    release.set()
    while cache.peek("page") is None:
        await asyncio.sleep(0)
    assert (await cache.get("page", render)).body == b"version 2" and first.body == b"version 1"


async def test_after_a_change_nobody_gets_the_old_page():
    clock, renders = Clock(), []

    async def render():
        renders.append(1)
        return f"version {len(renders)}".encode(), "text/html"

    cache = PublicCache(time_to_live=30.0, clock=clock)
    await cache.get("page", render)
    cache.on_event({"kind": "published"})
    assert (await cache.get("page", render)).body == b"version 2"


async def test_database_run_refuses_a_live_result(settings):
    db = Database(settings.database_url)
    try:
        with pytest.raises(TypeError, match="live SQLAlchemy result"):
            await db.run(lambda session: session.execute(text("SELECT 1")), write=False)
        with pytest.raises(TypeError, match="live SQLAlchemy result"):
            await db.run(lambda session: (1, session.execute(text("SELECT 1")).scalars()))
        assert await db.run(lambda session: session.execute(text("SELECT 1")).all()) == [(1,)]
    finally:
        db.dispose()
