"""An in-process event bus between the request handlers, the dispatcher and live pages.

Thread-safe publishing (sessions commit in worker threads) into asyncio queues. Across processes
the bus is fed by PostgreSQL ``LISTEN`` (see ``broadcast.delivery.listener``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

Event = dict[str, Any]


Listener = Callable[[Event], None]


class Bus:
    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex  # marks the notices this bus sent to other processes
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]] = set()
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event, in the publisher's thread, so it must be quick
        and never block (a cache drops entries, a hub hands the event to its loop). Returns the
        function that stops it. One listener can route events to many clients: only those that
        an event concerns are woken."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken listener must not keep the event from the others
                log.exception("event listener failed", extra={"kind": event.get("kind")})
        for loop, queue in list(self._subscribers):
            try:
                loop.call_soon_threadsafe(_put, queue, event)
            except RuntimeError:  # the loop is closed: the subscriber is gone
                self._subscribers.discard((loop, queue))

    @contextmanager
    def subscribe(self, maxsize: int = 1000) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        entry = (asyncio.get_running_loop(), queue)
        self._subscribers.add(entry)
        try:
            yield entry[1]
        finally:
            self._subscribers.discard(entry)


def _put(queue: asyncio.Queue[Event], event: Event) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:  # a slow listener loses events, never blocks the publisher
        log.warning("event queue full; event dropped", extra={"kind": event.get("kind")})
