"""Gauge and warning-feed servers on 127.0.0.1: documents the test sets per path, answered the way
real feed servers answer (ETag and Last-Modified, 304 to a conditional GET), plus the ways they
fail: slow responses, 500s, garbage, oversized bodies (with and without Content-Length), and
redirect loops.

    with FeedServer() as server:
        server.state.put("/mook.xml", rss_bytes)            # ETag = a hash of the body
        server.state.put("/slow.xml", rss_bytes, delay=5)   # the body starts after 5 s
        server.state.fail("/down.xml", 500)
        server.state.redirect("/a", "/b"); server.state.redirect("/b", "/a")
        server.state.endless("/huge.xml")                    # streams without Content-Length
        ... server.state.hits["/mook.xml"], server.state.not_modified["/mook.xml"]
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.fakes.server import FakeServer


@dataclass
class Document:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    delay: float = 0.0
    etag: bool = True
    last_modified: datetime | None = None
    location: str | None = None
    endless: bool = False


@dataclass
class FeedState:
    documents: dict[str, Document] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    not_modified: Counter = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests answered at the same time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: bytes, **options) -> None:
        with self.lock:
            self.documents[path] = Document(body=body, **options)

    def fail(self, path: str, status: int = 500) -> None:
        self.put(path, b"Internal Server Error", status=status, content_type="text/plain")

    def redirect(self, path: str, location: str) -> None:
        self.put(path, b"", status=302, location=location)

    def endless(self, path: str) -> None:
        self.put(path, b"<rss>" + b" " * 65536, endless=True)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def feed_app(state: FeedState):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        with state.lock:
            state.hits[path] += 1
            document = state.documents.get(path)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if document is None:
                response = Response(b"Not Found", status_code=404, media_type="text/plain")
            else:
                response = await _answer(state, request, path, document)
            await response(scope, receive, send)
        finally:
            with state.lock:
                state.in_flight -= 1

    return app


async def _answer(state: FeedState, request: Request, path: str, doc: Document) -> Response:
    if doc.delay:
        await asyncio.sleep(doc.delay)
    if doc.location is not None:
        return Response(b"", status_code=doc.status, headers={"Location": doc.location})
    if doc.status != 200:
        return Response(doc.body, status_code=doc.status, media_type=doc.content_type)
    if doc.endless:

        async def chunks():
            while True:
                yield doc.body
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type=doc.content_type)
    headers = {}
    if doc.etag:
        headers["ETag"] = etag_of(doc.body)
    if doc.last_modified is not None:
        headers["Last-Modified"] = format_datetime(doc.last_modified.astimezone(UTC), usegmt=True)
    if _unchanged(request, headers):
        with state.lock:
            state.not_modified[path] += 1
        return Response(status_code=304, headers=headers)
    return Response(doc.body, media_type=doc.content_type, headers=headers)


def _unchanged(request: Request, headers: dict[str, str]) -> bool:
    wanted = request.headers.get("if-none-match")
    if wanted is not None and "ETag" in headers:
        return wanted == headers["ETag"]
    since = request.headers.get("if-modified-since")
    return since is not None and since == headers.get("Last-Modified")


LARGE_FEED_END = datetime(2021, 7, 16, 6, 0, tzinfo=UTC)


def large_rss(entries: int, *, end: datetime = LARGE_FEED_END) -> bytes:
    """A legal RSS gauge feed of ``entries`` compact items, one a minute, oldest first (so a
    reader that keeps the first N keeps the oldest); entry k reads ``1000 + k % 500`` cm and has
    guid ``r<k>``. 45,000 items are about 4.8 MB."""
    items = [
        f"<item><guid>r{k}</guid><title>{1000 + k % 500} cm</title><pubDate>"
        f"{format_datetime(end - timedelta(minutes=entries - 1 - k), usegmt=True)}</pubDate></item>"
        for k in range(entries)
    ]
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Gauge</title>"
        f"<link>http://127.0.0.1/</link><description>Levels</description>{''.join(items)}"
        "</channel></rss>"
    ).encode()


class FeedServer(FakeServer):
    def __init__(self) -> None:
        self.state = FeedState()
        super().__init__(feed_app(self.state))

    def url_for(self, path: str) -> str:
        return f"{self.url}{path}"
