"""Run a fake provider (any ASGI app) on 127.0.0.1 in a background thread, plus the parts
every fake shares: fault injection and sliding-window rate limits.

    with FakeServer(app) as server:      # or server.start() ... server.stop()
        httpx.get(f"{server.url}/health")

The socket is bound before the thread starts (port 0, so the OS picks a free port and there is
no race between "find a port" and "bind it"); ``start()`` returns once uvicorn is accepting.
``stop()`` then ``start()`` again serves on the same port: in between, connections are refused.
If ``app.state.faults`` is a ``Faults``, ``stop()`` ends its hanging requests first.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.requests import Request

HOST = "127.0.0.1"  # the only address tests may use
# A bound, not a pace: a started server returns at once; a machine at a load average of 8
# needed more than the 30 s once allowed to start the whole service.
STARTUP_SECONDS = 120.0


class FakeServer:
    """uvicorn in a daemon thread; ``url`` is ``http://127.0.0.1:<port>`` once started."""

    def __init__(
        self, app: Any, *, startup_timeout: float = STARTUP_SECONDS, lifespan: str = "off"
    ) -> None:
        self.app = app
        self.lifespan = lifespan  # "on" to serve our own app with its start-up and shutdown
        self.url = ""
        self.port = 0
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> Self:
        if faults := self._faults():
            faults.rearm()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, self.port))  # started again: the same port (an outage ends)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan=self.lifespan,
            access_log=False,
            # Requests left hanging by a fault must not block shutdown for long.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        sockets = [self._sock]
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": sockets},
            daemon=True,
            name=f"fake-server-{self.port}",
        )
        self._thread.start()
        self._wait_until_started()
        return self

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake server on {self.url} did not start")
            time.sleep(0.005)

    def _faults(self) -> Faults | None:
        faults = getattr(getattr(self.app, "state", None), "faults", None)
        return faults if isinstance(faults, Faults) else None

    def stop(self) -> None:
        if faults := self._faults():
            faults.release()  # wake hanging handlers so shutdown is quick
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Fault:
    status: int | None  # HTTP status to answer; None = process normally (after the hang)
    hang: float = 0.0  # seconds to stall before answering


class Faults:
    """Failure injection queue: the next N requests fail with a status and/or hang.

    Thread-safe: tests call ``fail_next``/``hang_next`` from their own thread while the
    server thread consumes faults.
    """

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.injected: list[Fault] = []  # faults actually applied, for assertions

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._push(n, Fault(status=status))

    def hang_next(self, n: int = 1, seconds: float = 10.0, status: int | None = None) -> None:
        """Stall the next n requests; afterwards answer ``status`` or, if None, process them
        normally (like a slow upstream: the client times out but the message may still go out)."""
        self._push(n, Fault(status=status, hang=seconds))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def release(self) -> None:
        """End all current and future hangs at once (used on shutdown)."""
        self._released.set()

    def rearm(self) -> None:
        self._released.clear()

    def _push(self, n: int, fault: Fault) -> None:
        with self._lock:
            self._queue.extend(Fault(fault.status, fault.hang) for _ in range(n))

    def _pop(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    async def apply(self) -> int | None:
        """Consume one fault if queued; returns the status to answer, or None to carry on."""
        fault = self._pop()
        if fault is None:
            return None
        self.injected.append(fault)
        deadline = time.monotonic() + fault.hang
        while time.monotonic() < deadline and not self._released.is_set():
            await asyncio.sleep(0.02)
        return fault.status


@dataclass
class SlidingWindow:
    """At most ``limit`` events per ``period`` seconds per key, over a true sliding window."""

    limit: int
    period: float = 1.0
    _events: dict[Hashable, deque[float]] = field(default_factory=dict, repr=False)

    def wait_time(self, key: Hashable = None, now: float | None = None) -> float:
        """Seconds until one more event would be allowed (0.0 = allowed now)."""
        now = time.monotonic() if now is None else now
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.period:
            events.popleft()
        if len(events) < self.limit:
            return 0.0
        return events[len(events) - self.limit] + self.period - now

    def record(self, key: Hashable = None, now: float | None = None) -> None:
        self._events.setdefault(key, deque()).append(time.monotonic() if now is None else now)

    def reset(self) -> None:
        self._events.clear()


@dataclass
class HeldFromFirstLook(SlidingWindow):
    """A window already full for ``key`` when the stand-in first looks at it: as if requests had
    gone to ``key`` just before ours, whenever ours comes. A window filled when the test starts
    could run out on a slow machine before the request that should meet it arrives."""

    key: Hashable = None

    def wait_time(self, key: Hashable = None, now: float | None = None) -> float:
        if key == self.key and key not in self._events:
            for _ in range(self.limit):
                self.record(key, now)
        return super().wait_time(key, now)


def retry_seconds(wait: float) -> int:
    """Providers announce whole seconds, rounded up and never 0."""
    return max(1, math.ceil(wait))


async def read_params(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """Query string + body (JSON, urlencoded or multipart) as (fields, files).

    Repeated form keys become lists (Mastodon's ``media_ids[]``, Twilio's ``MediaUrl``).
    """
    fields: dict[str, Any] = dict(request.query_params)
    files: dict[str, Any] = {}
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = await request.body()
        if body:
            fields.update(await request.json())
        return fields, files
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key in set(form.keys()):
            values = form.getlist(key)
            target = files if hasattr(values[0], "filename") else fields
            target[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return fields, files
