"""Request body limits, per route, enforced before the application reads the body.

Without them one anonymous request could make the process parse a 48 MB JSON array (the token
is checked after the body is read) or spool a 100 MB form to disk. A declared ``Content-Length``
over the limit is answered 413 at once, without a byte of the body read; a chunked body is
counted while it streams and cut off with 413 the moment it passes the limit. The limits
(see docs/limits.md): media uploads take the media size settings plus multipart overhead,
providers' webhooks ``max_webhook_bytes``, everything else (JSON API, forms)
``max_request_bytes``. Pure ASGI: responses, SSE included, stream through untouched.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcast.errors import DomainError, TooLarge
from broadcast.i18n import _
from broadcast.media.upload import MULTIPART_SLACK
from broadcast.settings import Settings

UPLOADS = re.compile(r"^/(?:api/v1|console)/updates/[^/]+/media$")
WEBHOOKS = re.compile(r"^/webhooks/")


class BodyTooLarge(TooLarge, HTTPException):
    """413 for a body over its route's limit. A domain error, so the app answers it like every
    other (JSON, or the console's Dutch page); an HTTPException too, so FastAPI's body parsing
    lets it through instead of turning it into a 400."""

    def __init__(self, limit: int):
        message = _("the request body is larger than %(limit)s, the most this address accepts")
        values: dict[str, object] = {"limit": _size(limit)}
        HTTPException.__init__(self, TooLarge.status_code, message % values)
        self.message, self.values = message, values


def _size(limit: int) -> str:
    return f"{limit / 2**20:.3g} MB" if limit >= 2**20 else f"{limit // 1024} kB"


def route_limits(settings: Settings) -> tuple[tuple[re.Pattern[str], int], ...]:
    """The table: the first pattern that matches the path decides; else ``max_request_bytes``."""
    upload = max(settings.media_max_image_bytes, settings.media_max_video_bytes)
    return (
        (UPLOADS, upload + MULTIPART_SLACK),
        (WEBHOOKS, settings.max_webhook_bytes),
    )


class BodyLimits:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.table = route_limits(settings)
        self.default = settings.max_request_bytes

    def limit_for(self, path: str) -> int:
        return next((limit for route, limit in self.table if route.match(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not ("content-length" in headers or "transfer-encoding" in headers):
            await self.app(scope, receive, send)  # no body: nothing to count
            return
        limit = self.limit_for(scope["path"])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refuse(scope, receive, send, BodyTooLarge(limit))
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # raised outside a route, where no handler answered it
            if started:
                raise
            await refuse(scope, receive, send, exc)


async def refuse(scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
    """Answer as the app answers every domain error (its handler decides JSON or page)."""
    handler = getattr(scope.get("app"), "exception_handlers", {}).get(DomainError)
    if handler is not None:
        response = await handler(Request(scope, receive), exc)
    else:
        response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    await response(scope, receive, send)


async def small_form(request: Request) -> dict[str, str]:
    """A page's form, text fields only (the body limit bounds its size; a file part is a 400),
    read and closed at once so that nothing stays spooled on disk. Of a repeated field, the
    last value (``small_form_items`` has them all)."""
    return dict(await small_form_items(request))


async def small_form_items(request: Request) -> list[tuple[str, str]]:
    """Every text field of a page's form in order, repeated ones (ticked boxes) included."""
    async with request.form(max_files=0) as form:
        return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
