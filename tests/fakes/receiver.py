"""A partner system receiving our signed webhook POSTs: records each one, checks its signature,
and fails on demand (status codes, Retry-After) like a real receiver behind a load balancer.
``state.slow_down(seconds)`` makes it a slow one: every call is held open that long, or until
``state.release()``; ``state.opened`` counts the calls that came in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Received:
    path: str
    delivery_id: str
    signature_ok: bool
    document: dict


@dataclass
class ReceiverState:
    secret: str
    received: list[Received] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers)
    lock: threading.Lock = field(default_factory=threading.Lock)
    opened: int = 0  # calls that came in, answered or not
    slow_seconds: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)

    def slow_down(self, seconds: float) -> None:
        self.slow_seconds = seconds
        self.released.clear()

    def release(self) -> None:
        """Answer the calls held open now, and every later one at once."""
        self.slow_seconds = 0.0
        self.released.set()

    async def hold(self) -> None:
        deadline = time.monotonic() + self.slow_seconds
        while not self.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        with self.lock:
            self.fail_next.extend([(status, headers)] * times)

    def delivery_ids(self) -> list[str]:
        with self.lock:
            return [r.delivery_id for r in self.received]


def receiver_app(secret: str) -> Starlette:
    state = ReceiverState(secret)

    async def receive(request: Request) -> Response:
        body = await request.body()
        with state.lock:
            state.opened += 1
        if state.slow_seconds:
            await state.hold()
        with state.lock:
            if state.fail_next:
                status, headers = state.fail_next.pop(0)
                return Response(status_code=status, headers=headers)
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        signature_ok = hmac.compare_digest(
            expected, request.headers.get("X-Broadcast-Signature", "")
        )
        with state.lock:
            state.received.append(
                Received(
                    request.url.path,
                    request.headers.get("X-Broadcast-Delivery", ""),
                    signature_ok,
                    json.loads(body),
                )
            )
        return JSONResponse({"ok": True}, status_code=202 if signature_ok else 401)

    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    app.state.receiver = state
    return app
