"""Public documents rendered once per change, not once per view.

The incident pages (per language), ``/``, ``/feed.atom``, ``/cap.atom`` and ``/updates/{id}.cap``
are kept as bytes (and compressed once) until an event says what they show changed: a publish,
correction, retraction, promise, pinned instruction, incident status or feed reading (see
``CHANGES``). Events reach
every process (PostgreSQL NOTIFY feeds the bus), so each process drops its copies. A short
time-to-live covers what depends on the clock alone ("today 14:05", the chart's window); a copy
that only aged out is still served while one re-render runs (stale-while-revalidate in the
process), so a request waits for a render only after a change.

Responses carry a strong ``ETag`` (a hash of the bytes) and ``Last-Modified``; conditional
requests get ``304``; ``Cache-Control`` lets a reverse proxy or CDN serve residents.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcast.events import Bus, Event
from broadcast.web import compression, i18n

# Event kinds after which a public document may read differently.
CHANGES = frozenset({"published", "public", "feeds", "overdue", "instruction"})
TIME_TO_LIVE = 30.0  # seconds: the longest a page may lag behind the clock
PUBLIC = "public, max-age=10, stale-while-revalidate=60, stale-if-error=86400"
PRIVATE = "private, no-store"
PERSONAL = ("/console", "/subscribe", "/api/")  # a person's own data, forms or session
Render = Callable[[], Awaitable[tuple[bytes, str]]]  # -> (body, media type)


@dataclass
class Document:
    body: bytes
    media_type: str
    etag: str  # without quotes: the hash of the bytes
    last_modified: datetime
    made_at: float
    vary: tuple[str, ...] = ()  # request headers besides Accept-Encoding that choose the bytes
    encoded: dict[str, bytes] = field(default_factory=dict)

    def encode(self, encoding: str | None) -> bytes:
        """The bytes in ``encoding``, compressed once per document."""
        if encoding is None or not compression.compressible(self.media_type):
            return self.body
        if encoding not in self.encoded:
            coder = compression.ENCODERS[encoding]
            self.encoded[encoding] = coder(self.body, compression.THOROUGH[encoding])
        return self.encoded[encoding]


class PublicCache:
    """Documents by key; a render in progress is shared by every request that waits for it."""

    def __init__(self, *, time_to_live: float = TIME_TO_LIVE, clock=time.monotonic):
        self.time_to_live, self.clock = time_to_live, clock
        self.renders = 0  # how many times a document was rendered (tests count them)
        self._documents: dict[Hashable, Document] = {}
        self._stamps: dict[Hashable, tuple[str, datetime]] = {}  # key: last ETag, Last-Modified
        self._pending: dict[Hashable, tuple[int, asyncio.Future[Document]]] = {}
        self._generation = 0
        self._lock = threading.Lock()  # events arrive in the committing thread

    def on_event(self, event: Event) -> None:
        if event.get("kind") in CHANGES:
            self.invalidate()

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._documents.clear()

    def peek(self, key: Hashable) -> Document | None:
        """The document if it is in memory and fresh; never renders."""
        found = self._documents.get(key)
        if found is not None and self.clock() - found.made_at < self.time_to_live:
            return found
        return None

    async def get(self, key: Hashable, render: Render, vary: tuple[str, ...] = ()) -> Document:
        if (fresh := self.peek(key)) is not None:
            return fresh
        generation = self._generation
        pending = self._pending.get(key)
        if pending is None or pending[0] != generation:  # the first to miss renders, in a task
            rendering = self._render(key, render, generation, vary)
            task = asyncio.ensure_future(rendering)
            pending = self._pending[key] = (generation, task)
            task.add_done_callback(lambda done: self._forget(key, done))
        if (stale := self._documents.get(key)) is not None:
            # Only aged out (an event would have dropped it): served while the one re-render runs
            # (stale-while-revalidate inside the process), so nobody waits for the clock's sake.
            return stale
        return await asyncio.shield(pending[1])  # a client that goes away stops no render

    def _last_modified(self, key: Hashable, etag: str) -> datetime:
        """Kept while the bytes are the same; otherwise now, and always later than the last
        one, so ``If-Modified-Since`` never matches a change made within the same second."""
        now = datetime.now(UTC).replace(microsecond=0)
        last = self._stamps.get(key)
        if last is not None and last[0] == etag:
            return last[1]
        if last is not None and now <= last[1]:
            now = last[1] + timedelta(seconds=1)
        self._stamps[key] = (etag, now)
        return now

    def _forget(self, key: Hashable, task: asyncio.Future[Document]) -> None:
        if self._pending.get(key, (None, None))[1] is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved: its waiters, if any, got it too

    async def _render(
        self,
        key: Hashable,
        render: Render,
        generation: int,
        vary: tuple[str, ...],
    ) -> Document:
        body, media_type = await render()
        self.renders += 1
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        document = Document(
            body, media_type, etag, self._last_modified(key, etag), self.clock(), vary
        )
        with self._lock:
            if generation == self._generation:  # nothing changed while it was rendered
                self._documents[key] = document
        return document


_caches: weakref.WeakKeyDictionary[Bus, PublicCache] = weakref.WeakKeyDictionary()


def cache_of(app) -> PublicCache:
    """The process's cache of the app's public documents, dropped by the app's bus events."""
    bus = app.state.db.bus
    if (found := _caches.get(bus)) is None:
        found = _caches[bus] = PublicCache()
        bus.listen(found.on_event)
    return found


def key_of(request: Request, *, per_language: bool) -> tuple[str, str | None]:
    """A document is known by its path, and for a page also by the reader's language."""
    return request.url.path, i18n.language_of(request) if per_language else None


async def cached(request: Request, render: Render, *, per_language: bool = False) -> Response:
    """The document at the request's address as a response: from memory while nothing changed,
    rendered once otherwise; 304 when the client has it."""
    key = key_of(request, per_language=per_language)
    vary = ("Cookie",) if per_language else ()  # the language comes from ?lang= or the cookie
    return respond(request, await cache_of(request.app).get(key, render, vary))


def respond(request: Request, document: Document) -> Response:
    encoding = compression.negotiate(request.headers.get("accept-encoding", ""))
    if not compression.compressible(document.media_type):
        encoding = None
    headers = {
        "ETag": f'"{document.etag}-{encoding}"' if encoding else f'"{document.etag}"',
        "Last-Modified": format_datetime(document.last_modified, usegmt=True),
        "Cache-Control": PUBLIC,
        "Vary": ", ".join(("Accept-Encoding", *document.vary)),
    }
    if not_modified(request, document):
        return Response(status_code=304, headers=headers)
    body = document.encode(encoding)
    if encoding:
        headers["Content-Encoding"] = encoding
    return Response(body, media_type=document.media_type, headers=headers)


def not_modified(request: Request, document: Document) -> bool:
    """``If-None-Match`` decides when present; ``If-Modified-Since`` only without it."""
    if (tags := request.headers.get("if-none-match")) is not None:
        if tags.strip() == "*":
            return True
        return any(_tag_hash(tag) == document.etag for tag in tags.split(","))
    if (since := request.headers.get("if-modified-since")) is not None:
        try:
            return document.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _tag_hash(tag: str) -> str:
    """The hash in ``"<hash>"``, ``"<hash>-gzip"`` or ``W/"<hash>"``: one document, any encoding."""
    return tag.strip().removeprefix("W/").strip('"').split("-", 1)[0]


class PersonalPages:
    """``Cache-Control: private, no-store`` on the console, the sign-up forms and the API, unless
    the route chose otherwise: no proxy may keep one person's page for the next."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PERSONAL):
            await self.app(scope, receive, send)
            return

        async def private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Cache-Control", PRIVATE)
            await send(message)

        await self.app(scope, receive, private)


class FromMemory:
    """Answers a GET for a public document that is in memory before routing: the residents'
    rush costs a dictionary lookup, not a trip through every route. Anything else, a miss, or an
    address with a query (``?lang=`` to remember, ``?asked=1``) goes on to the application, which
    renders and keeps the document."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            request = Request(scope)
            if found := self._lookup(request):
                await respond(request, found)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _lookup(request: Request) -> Document | None:
        if (cache := _caches.get(request.app.state.db.bus)) is None:
            return None
        return cache.peek(key_of(request, per_language=False)) or cache.peek(
            key_of(request, per_language=True)
        )
