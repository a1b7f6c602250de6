"""Compression: gzip, or brotli where the client asks for it, for text (HTML, Atom, CAP, JSON,
CSS, JS); never for Server-Sent Events, which must reach the browser event by event."""

from __future__ import annotations

import gzip
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:
    import brotli
except ImportError:  # brotli is optional: gzip alone then
    brotli = None

MINIMUM_SIZE = 500  # below this the headers outweigh what compression saves
COMPRESSIBLE = (
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/atom+xml",
    "application/cap+xml",
    "application/xml",
    "image/svg+xml",
)


def _brotli(body: bytes, quality: int) -> bytes:
    return brotli.compress(body, quality=quality)


def _gzip(body: bytes, level: int) -> bytes:
    return gzip.compress(body, compresslevel=level, mtime=0)  # mtime 0: same bytes, same ETag


ENCODERS: dict[str, Callable[[bytes, int], bytes]] = {"gzip": _gzip}
if brotli is not None:
    ENCODERS = {"br": _brotli, **ENCODERS}  # preferred when the client accepts both
FAST = {"br": 4, "gzip": 6}  # per-response effort; cached documents are compressed once, harder
THOROUGH = {"br": 9, "gzip": 9}


def negotiate(accept_encoding: str) -> str | None:
    """The best encoding the client accepts (``q=0`` refuses), or None for identity."""
    accepted = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            accepted[name.strip()] = float(quality)
        except ValueError:
            continue
    for name in ENCODERS:
        if accepted.get(name, accepted.get("*", 0)) > 0:
            return name
    return None


def compressible(media_type: str) -> bool:
    return media_type.split(";", 1)[0].strip().lower() in COMPRESSIBLE


class Compression:
    """Compresses complete text responses that are not compressed yet. Streamed responses
    (more than one body message, SSE) pass through untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = negotiate(Headers(scope=scope).get("accept-encoding", ""))
        start: Message | None = None

        async def compressing(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_text(message):
                start = message  # held until the body shows whether it is whole
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            first, start = start, None
            await _send_body(first, message, encoding, send)

        await self.app(scope, receive, compressing)


def _is_text(start: Message) -> bool:
    return compressible(Headers(raw=start.get("headers", [])).get("content-type", ""))


async def _send_body(start: Message, message: Message, encoding: str | None, send: Send) -> None:
    headers = MutableHeaders(scope=start)
    body = message.get("body", b"")
    text = compressible(headers.get("content-type", "")) and "content-encoding" not in headers
    if text:
        headers.add_vary_header("Accept-Encoding")
    if text and encoding and not message.get("more_body") and len(body) >= MINIMUM_SIZE:
        body = ENCODERS[encoding](body, FAST[encoding])
        headers["content-encoding"] = encoding
        headers["content-length"] = str(len(body))
        if etag := headers.get("etag"):  # another representation: another strong validator
            headers["etag"] = f'{etag.rstrip(chr(34))}-{encoding}"'
        message = {**message, "body": body}
    await send(start)
    await send(message)
