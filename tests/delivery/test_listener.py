"""Events: this process hears its own at commit; other processes hear them through LISTEN."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from broadcast.db import Database, emit
from broadcast.delivery.listener import listen


@pytest.fixture
def database(database_url):
    db = Database(database_url)
    yield db
    db.engine.dispose()


def test_a_committed_event_is_on_this_process_bus_when_commit_returns(database):
    """So that a request following a publish in the same process never meets a page cached
    before it (the cache is dropped in the committing thread, not after a NOTIFY round trip)."""
    heard = []
    database.bus.listen(heard.append)
    with database.session_scope() as session:
        emit(session, "published", update_id=7)
        assert heard == []  # never before the commit
    assert heard == [{"kind": "published", "update_id": 7}]


def test_a_rolled_back_event_is_never_heard(database):
    heard = []
    database.bus.listen(heard.append)
    with contextlib.suppress(RuntimeError), database.session_scope() as session:
        emit(session, "published", update_id=7)
        raise RuntimeError("the publish failed")
    assert heard == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_listen_brings_other_processes_events_and_skips_our_own(database, database_url):
    other = Database(database_url)  # another process: a bus of its own
    heard: list[dict] = []
    database.bus.listen(heard.append)
    listener = asyncio.create_task(listen(database_url, database.bus))
    try:
        await _until(lambda: {"kind": "listening"} in heard)
        with database.session_scope() as session:
            emit(session, "published", update_id=1)  # ours
        with other.session_scope() as session:
            emit(session, "published", update_id=2)  # theirs
        await _until(lambda: {"kind": "published", "update_id": 2} in heard)
        with other.session_scope() as session:
            emit(session, "published", update_id=3)  # after ours would have arrived, in order
        await _until(lambda: {"kind": "published", "update_id": 3} in heard)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        other.engine.dispose()
    published = [event["update_id"] for event in heard if event["kind"] == "published"]
    assert published == [1, 2, 3]  # ours once (at commit), never again from LISTEN
    assert all("origin" not in event for event in heard)


async def _until(condition, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
