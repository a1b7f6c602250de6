"""Live pages: the platform channel announces each update; every process pushes it to the
browsers that follow the incident, as Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from broadcast.db import Database, emit
from channels.base import UpdateView

KEEPALIVE_SECONDS = 15


def announcer(db: Database) -> Callable[[UpdateView], Awaitable[None]]:
    async def announce(update: UpdateView) -> None:
        def send() -> None:
            with db.session_scope() as session:
                emit(session, "live", update_id=update.id, slug=update.incident_slug)

        await asyncio.to_thread(send)

    return announce


async def updates_for(db: Database, slug: str) -> AsyncIterator[int]:
    """Yields the id of every update announced for the incident, while the client listens."""
    with db.bus.subscribe() as events:
        while True:
            event = await events.get()
            if event.get("kind") == "live" and event.get("slug") == slug:
                yield int(event["update_id"])
