"""A circuit breaker per lane: while a provider is down, one request at a time finds out when it
is back, and then the whole backlog goes at the channel's pace.

- **closed**: everything is sent. Each channel-wide refusal (5xx, 429, connection refused,
  time-out: ``RetryLater`` with the channel's scope) counts; any answer that shows the provider
  is up (sent, a permanent refusal, a recipient gone, a per-recipient hold) resets the count.
  ``failures`` consecutive refusals open the breaker.
- **open**: nothing is sent. After ``probe_seconds`` (or the provider's ``Retry-After``, when
  it said longer) one waiting delivery is let through as the probe: **half-open**.
- **half-open**: the probe is the only request in flight. Its success closes the breaker and
  every waiting delivery goes on at once (the pacer spaces them at the provider's limit); its
  failure opens it again for another ``probe_seconds``.

The probe interval does not grow: a provider back after five minutes of 5xx is found within
``probe_seconds`` (plus one answer's latency), not after an exponential back-off that slept past
its recovery. The clock and the sleep are injected, so tests drive an outage of any length on a
clock of their own and count probes and states, never seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum


class State(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class Breaker:
    def __init__(
        self,
        *,
        failures: int = 5,
        probe_seconds: float = 2.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self.threshold = max(1, failures)
        self.probe_seconds = probe_seconds
        self._clock = clock or time.monotonic
        self._sleep = sleep or asyncio.sleep
        self.state = State.closed
        self.consecutive = 0  # channel-wide refusals in a row while closed
        self.next_probe_at = 0.0
        self._changed = asyncio.Event()
        self._timer: asyncio.Task | None = None
        # What happened, for tests, /healthz and benchmarks (counts, never durations).
        self.opened = 0  # times the breaker opened
        self.probes = 0  # probes let through
        self.probe_answers = 0  # probes answered (either way)
        self.transitions: list[State] = []

    @property
    def is_closed(self) -> bool:
        return self.state == State.closed

    async def admit(self, give_up: Callable[[], bool] = lambda: False) -> bool | None:
        """Wait until a send may go out. Returns False when the breaker is closed (an ordinary
        send), True when the caller is the probe (it must report with ``succeeded`` or
        ``failed``), and None when ``give_up()`` became true while waiting (checked whenever
        the breaker changes: at least every ``probe_seconds`` while it is open)."""
        while True:
            if self.state == State.closed:
                return False
            if give_up():
                return None
            if self.state == State.open and self._clock() >= self.next_probe_at:
                self._move(State.half_open)
                self.probes += 1
                return True
            await self._wait_for_change()

    def succeeded(self, probe: bool = False) -> None:
        """The provider answered (whatever it said about this one message): it is up. A send
        let through before the breaker opened that succeeds late is as good a sign as the
        probe's success."""
        if probe:
            self.probe_answers += 1
        self.consecutive = 0
        if self.state != State.closed:
            self._move(State.closed)

    def failed(self, retry_after: float | None = None, probe: bool = False) -> None:
        """The provider refused the channel as a whole (or could not be reached)."""
        if probe:
            self.probe_answers += 1
        if self.state == State.closed:
            self.consecutive += 1
            if self.consecutive >= self.threshold:
                self.opened += 1
                self._open(retry_after)
        elif self.state == State.half_open and probe:
            self._open(retry_after)
        elif retry_after:  # a late answer to an older send: only its Retry-After counts
            self.next_probe_at = max(self.next_probe_at, self._clock() + retry_after)
            if self.state == State.open:
                self._arm()

    def abandoned(self) -> None:
        """The probe ended without an answer (cancelled): the next one may go at once."""
        if self.state == State.half_open:
            self.next_probe_at = self._clock()
            self._move(State.open)

    def _open(self, retry_after: float | None) -> None:
        wait = max(self.probe_seconds, retry_after or 0.0)  # the provider's word wins
        self.next_probe_at = max(self.next_probe_at, self._clock() + wait)
        self._move(State.open)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().create_task(self._ring(self.next_probe_at))

    async def _ring(self, at: float) -> None:
        while (now := self._clock()) < at:  # the task may start a little later than armed
            await self._sleep(at - now)
        self._notify()

    def _move(self, state: State) -> None:
        self.state = state
        self.transitions.append(state)
        if state == State.closed and self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self) -> None:
        await self._changed.wait()

    def close(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
