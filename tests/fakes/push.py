"""A push service (as Mozilla's autopush or FCM's Web Push endpoint) that behaves like the real
one: a browser's subscription is an endpoint here plus the browser's keys; each POST must carry a
valid VAPID ``Authorization`` (RFC 8292: an ES256 JWT for this origin, ``exp`` within 24 hours,
a ``sub``, signed by the key the browser subscribed with) and an ``aes128gcm`` body that the
browser's private key DECRYPTS (RFC 8291): what a browser would show is in ``state.received``.

Answers: 201 with ``Location`` for an accepted message; 404 for an endpoint it never issued; 410
for one that was unsubscribed (``state.unsubscribe``); 401/403 for a missing or wrong VAPID
token; 400 for a body that does not decrypt; 413 above 4096 bytes; 429 with ``Retry-After`` while
``state.rate_limit`` holds the subscription; whatever ``state.answer(status)`` queued.

    with FakePushService() as push:
        browser = push.subscribe(application_server_key=public_key)
        ... POST to browser.endpoint ...
        push.state.received[-1].payload  # the decrypted JSON
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.push.crypto import Subscription, b64url, public_point
from tests.fakes.server import FakeServer, SlidingWindow, retry_seconds

MAX_BODY = 4096


@dataclass
class Browser:
    """One subscription as the browser holds it: the endpoint and both halves of its keys."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None

    @property
    def subscription(self) -> Subscription:
        point = b64url(public_point(self.private_key.public_key()))
        return Subscription(self.endpoint, point, b64url(self.auth))

    def as_json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives a page."""
        sub = self.subscription
        return {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}


@dataclass
class Received:
    token: str
    payload: dict[str, Any]
    headers: dict[str, str]
    vapid_claims: dict[str, Any]


@dataclass
class PushState:
    origin: str = ""
    browsers: dict[str, Browser] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, why)
    queued: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    rate_limit: SlidingWindow | None = None  # keyed by the subscription token
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        with self.lock:
            self.queued.extend([(status, headers)] * times)

    def unsubscribe(self, browser: Browser) -> None:
        with self.lock:
            self.gone.add(browser.token)

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.payload for r in self.received]


def _refuse(state: PushState, status: int, why: str, **headers: str) -> Response:
    with state.lock:
        state.refused.append((status, why))
    return Response(json.dumps({"code": status, "message": why}), status, headers=headers)


def _check_vapid(state: PushState, browser: Browser, header: str) -> tuple[int, str, dict]:
    """(0, "", claims) for a valid token, else the status and reason the service answers."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "vapid":
        return 401, "no VAPID authorization", {}
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    token, key = parts.get("t", ""), parts.get("k", "")
    try:  # PyJWT: an implementation of its own, not the library that signed
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64decode(key))
        claims = jwt.decode(
            token, public, algorithms=["ES256"], audience=state.origin, options={"require": ["exp"]}
        )
    except jwt.InvalidAudienceError:
        return 403, "aud is not this push service", {}
    except (jwt.PyJWTError, ValueError):
        return 401, "VAPID token does not verify", {}
    now = time.time()
    if not now < float(claims.get("exp", 0)) <= now + 24 * 3600:
        return 403, "exp must be in the next 24 hours", {}
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return 403, "sub must be mailto: or https:", {}
    if browser.application_server_key and key != browser.application_server_key:
        return 403, "not the key the browser subscribed with", {}
    return 0, "", claims


def push_app() -> Starlette:
    state = PushState()

    async def push(request: Request) -> Response:
        body = await request.body()
        token = request.path_params["token"]
        with state.lock:
            if state.queued:
                status, headers = state.queued.pop(0)
                return Response(status_code=status, headers=headers)
            browser = state.browsers.get(token)
            gone = token in state.gone
        if browser is None:
            return _refuse(state, 404, "no such subscription")
        if gone:
            return _refuse(state, 410, "subscription expired or unsubscribed")
        status, why, claims = _check_vapid(state, browser, request.headers.get("authorization", ""))
        if status:
            return _refuse(state, status, why)
        if request.headers.get("content-encoding") != "aes128gcm":
            return _refuse(state, 400, "Content-Encoding must be aes128gcm")
        if not request.headers.get("ttl", "").isdigit():
            return _refuse(state, 400, "TTL header missing")
        if len(body) > MAX_BODY:
            return _refuse(state, 413, "payload too large")
        if state.rate_limit is not None:
            wait = state.rate_limit.wait_time(token)
            if wait > 0:
                return _refuse(
                    state, 429, "too many messages", **{"Retry-After": str(retry_seconds(wait))}
                )
            state.rate_limit.record(token)
        try:
            plain = http_ece.decrypt(
                body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
            payload = json.loads(plain)
        except Exception:  # noqa: BLE001 - a body the browser cannot read
            return _refuse(state, 400, "payload does not decrypt")
        with state.lock:
            message_id = next(state.ids)
            state.received.append(Received(token, payload, dict(request.headers), claims))
        return Response(status_code=201, headers={"Location": f"{state.origin}/m/{message_id}"})

    app = Starlette(routes=[Route("/push/{token}", push, methods=["POST"])])
    app.state.push = state
    return app


class FakePushService(FakeServer):
    def __init__(self) -> None:
        app = push_app()
        super().__init__(app)
        self.state: PushState = app.state.push

    def start(self):
        started = super().start()
        self.state.origin = self.url
        return started

    def subscribe(self, application_server_key: str | None = None) -> Browser:
        """What ``pushManager.subscribe()`` makes: a new endpoint and the browser's keys."""
        token = secrets.token_urlsafe(24)
        browser = Browser(
            token=token,
            endpoint=f"{self.url}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
            application_server_key=application_server_key,
        )
        with self.state.lock:
            self.state.browsers[token] = browser
        return browser


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
