"""Browser-facing protections: security headers on every response (public site and console),
CSRF tokens on console forms, and a same-origin check on every state-changing browser request."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere: the pages load their JS and CSS from /static.
CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# ReDoc (styled-components) styles its page with inline <style> and searches in a blob: worker;
# its scripts stay 'self' only.
REDOC_CSP = "; ".join(
    [CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"), "worker-src blob:"]
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
]


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware), so streamed responses such as SSE pass untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (REDOC_CSP if scope["path"] == "/redoc" else CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (n, v)
                    for n, v in [(b"content-security-policy", csp), *HEADERS]
                    if n not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def tokens_match(expected: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def same_origin(request: Request) -> bool:
    """A browser's POST names where it came from; another site's form must not act here.
    Neither header present (old clients, privacy settings) is left to the CSRF token."""
    headers = request.headers
    origin = headers.get("origin")
    source = origin or headers.get("referer")
    if not source or source == "null":
        return origin != "null"
    return urlsplit(source).netloc == headers.get("host")
