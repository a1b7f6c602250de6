"""Live pages: the platform channel announces each update; every process pushes it to the
browsers that follow the incident, as Server-Sent Events.

One hub per process takes the ``live`` events off the bus. For the incident an event concerns,
it reads the update once, renders its card once per language that incident's clients read, and
writes the same bytes to each of them; clients of other incidents are not woken. A client whose
backlog is full (a slow connection) is closed rather than waited for: its browser reconnects with
``Last-Event-ID`` and gets what it missed from the timeline.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

from broadcast.db import Database, emit
from broadcast.events import Bus, Event
from channels.base import UpdateView

log = logging.getLogger(__name__)
KEEPALIVE_SECONDS = 15
BACKLOG = 32  # events a client may fall behind before it is closed
WAKE_BATCH = 250  # clients woken per turn of the event loop, so /healthz and pages are not queued
# (slug, update id, languages) -> the HTML per language, or None when it is not public. Without
# an update id: the top of the page alone (the pinned instruction changed).
RenderCards = Callable[[str, int | None, set[str]], Awaitable[dict[str, str] | None]]
LIVE_KINDS = frozenset({"live", "instruction"})


def announcer(db: Database) -> Callable[[UpdateView], Awaitable[None]]:
    async def announce(update: UpdateView) -> None:
        def send(session) -> None:
            emit(session, "live", update_id=update.id, slug=update.incident_slug)

        await db.run(send)

    return announce


def event_bytes(update_id: int | None, html: str) -> bytes:
    """One SSE ``update`` event; each line of the fragment is a ``data:`` line. Only an update's
    event has an id: the browser's ``Last-Event-ID`` stays the last update it saw."""
    data = "".join(f"data: {line}\n" for line in html.split("\n"))
    event_id = f"id: {update_id}\n" if update_id is not None else ""
    return f"event: update\n{event_id}{data}\n".encode()


class Client:
    """One browser: what is still to be written to it, and the event that wakes its stream."""

    def __init__(self, language: str):
        self.language = language
        self.backlog: deque[tuple[int | None, bytes]] = deque()
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, update_id: int | None, message: bytes) -> None:
        if len(self.backlog) >= BACKLOG:
            self.close()
            return
        self.backlog.append((update_id, message))
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.backlog.clear()
        self.wake.set()


class Hub:
    """The clients of each incident, and one broadcaster at a time per incident."""

    def __init__(self, bus: Bus, render: RenderCards):
        self.loop = asyncio.get_running_loop()
        self.render = render
        self.clients: dict[str, set[Client]] = {}
        self.renders = 0  # cards rendered (tests count them)
        self._announced: dict[str, deque[int | None]] = {}
        self._broadcasters: dict[str, asyncio.Task[None]] = {}
        self._stop_listening = bus.listen(self._on_event)

    def _on_event(self, event: Event) -> None:
        """In the publisher's thread: only an event for an incident someone follows goes on."""
        slug = event.get("slug")
        if event.get("kind") not in LIVE_KINDS or slug not in self.clients:
            return
        update_id = int(event["update_id"]) if event.get("update_id") is not None else None
        try:
            self.loop.call_soon_threadsafe(self._announce, slug, update_id)
        except RuntimeError:  # the loop is closed: this process is shutting down
            self._stop_listening()

    def _announce(self, slug: str, update_id: int | None) -> None:
        self._announced.setdefault(slug, deque()).append(update_id)
        if slug not in self._broadcasters:
            self._broadcasters[slug] = self.loop.create_task(self._broadcast(slug))

    async def _broadcast(self, slug: str) -> None:
        try:
            announced = self._announced[slug]
            while announced:
                await self._send(slug, announced.popleft())
        finally:
            del self._broadcasters[slug]
            self._announced.pop(slug, None)

    async def _send(self, slug: str, update_id: int | None) -> None:
        clients = self.clients.get(slug, set())
        languages = {client.language for client in clients}
        if not languages:
            return
        try:
            cards = await self.render(slug, update_id, languages)
        except Exception:
            log.exception("live card failed", extra={"update_id": update_id})
            return
        if cards is None:
            return
        self.renders += len(cards)
        messages = {language: event_bytes(update_id, html) for language, html in cards.items()}
        followers = list(self.clients.get(slug, ()))
        for first in range(0, len(followers), WAKE_BATCH):
            for client in followers[first : first + WAKE_BATCH]:
                client.offer(update_id, messages[client.language])
            await asyncio.sleep(0)  # the woken write first; other requests get their turn

    @contextmanager
    def follow(self, slug: str, language: str) -> Iterator[Client]:
        client = Client(language)
        self.clients.setdefault(slug, set()).add(client)
        try:
            yield client
        finally:
            followers = self.clients.get(slug, set())
            followers.discard(client)
            if not followers:
                self.clients.pop(slug, None)


_hubs: weakref.WeakKeyDictionary[Bus, Hub] = weakref.WeakKeyDictionary()


def hub_of(db: Database, render: RenderCards) -> Hub:
    """The process's hub for this database's bus, made by the first client."""
    if (found := _hubs.get(db.bus)) is None:
        found = _hubs[db.bus] = Hub(db.bus, render)
    return found


async def stream(
    hub: Hub,
    slug: str,
    language: str,
    missed: Callable[[], Awaitable[Iterable[tuple[int | None, str]]]] | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of one client's event stream: first what it missed (``Last-Event-ID``), then
    each new update. (The response adds the keep-alive comments.)"""
    with hub.follow(slug, language) as client:
        yield b": connected\n\n"
        replayed: set[int | None] = set()
        for update_id, html in await missed() if missed is not None else ():
            if update_id is not None:
                replayed.add(update_id)
            yield event_bytes(update_id, html)
        while True:
            await client.wake.wait()
            client.wake.clear()
            if client.closed:
                return
            while client.backlog:
                update_id, message = client.backlog.popleft()
                if update_id not in replayed:
                    yield message
