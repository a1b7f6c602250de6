"""One pacer per channel, built from the adapter's declared limits: an overall rate (evenly
spaced slots, never bursts that trip the provider's limiter), a minimum interval per target,
a pause for everybody when the provider refused the channel as a whole ("retry after"), and a
hold on one target when only that recipient was refused (a busy chat, a per-number limit).

A provider counts a request when it *arrives*, and that moment lies somewhere between our
decision to send it and the answer we get back: a new connection, a busy event loop or the
network can delay one request and not the next. So the pacer counts every send from when it
is let through until its answer is in, and only then from the answer's time: at most
``per_second`` of them in any second, and a target's next send no sooner than
``per_target_interval`` after the answer to its last one. However late or out of order the
requests arrive, the provider's own sliding window then never sees one too many; jitter only
costs a little pace (the answer's latency per window), never a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable

from channels.base import Limits

HOLD_MEMORY = 10_000  # targets with a hold remembered at once (holds are rare and short)
WINDOW = 1.0  # seconds: providers state their rates per second


class Pacer:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / limits.per_second if limits.per_second else 0.0
        self.per_target = limits.per_target_interval
        self._clock = clock
        self._per_window = math.floor(limits.per_second) if limits.per_second else 0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._held_until: dict[str, float] = {}
        self._in_flight = 0
        self._busy_targets: Counter[str] = Counter()  # targets with a send in flight
        self._answered: deque[float] = deque()  # when the last sends' answers came in
        self._last_by_target: dict[str, float] = {}  # when each target's last answer came in
        self._released = asyncio.Event()

    @contextlib.asynccontextmanager
    async def slot(self, target: str) -> AsyncIterator[None]:
        """Wait until one more send to ``target`` keeps within every limit; the send happens
        inside the block, and counts until the block ends (answer, error or cancellation)."""
        await self._until(lambda now: self._target_ready(target))  # long waits first
        slot = max(self._clock(), self._next_slot)
        self._next_slot = slot + self.interval
        await self._until(lambda now: self._ready(target, now, slot))
        self._in_flight += 1
        self._busy_targets[target] += 1
        try:
            yield
        finally:
            self._answer(target)

    def pause(self, seconds: float) -> None:
        """The provider refused the channel: nobody is sent anything for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def hold(self, target: str, seconds: float) -> None:
        """The provider refused one recipient: only sends to ``target`` wait."""
        if seconds <= 0:
            return
        if len(self._held_until) >= HOLD_MEMORY:
            self._forget_expired_holds()
        until = self._clock() + seconds
        self._held_until[target] = max(self._held_until.get(target, 0.0), until)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    def forget_idle(self) -> None:
        """Drop per-target history that no longer constrains anything (bounded memory)."""
        horizon = self._clock() - self.per_target
        self._last_by_target = {t: at for t, at in self._last_by_target.items() if at > horizon}
        self._forget_expired_holds()

    async def _until(self, ready_at: Callable[[float], float | None]) -> None:
        """Sleep until ``ready_at(now) <= now``; ``None`` means "once a send in flight ends"."""
        while True:
            now = self._clock()
            ready = ready_at(now)
            if ready is None:
                self._released.clear()
                await self._released.wait()
            elif ready > now:
                await asyncio.sleep(ready - now)
            else:
                return

    def _ready(self, target: str, now: float, slot: float) -> float | None:
        target_ready, window_ready = self._target_ready(target), self._window_ready(now)
        if target_ready is None or window_ready is None:
            return None
        return max(slot, target_ready, window_ready)

    def _target_ready(self, target: str) -> float | None:
        ready = max(self._paused_until, self._held_until.get(target, 0.0))
        if not self.per_target:
            return ready
        if self._busy_targets[target]:
            return None
        return max(ready, self._last_by_target.get(target, 0.0) + self.per_target)

    def _window_ready(self, now: float) -> float | None:
        if not self._per_window:
            return now
        answered = self._answered
        while answered and answered[0] <= now - WINDOW:
            answered.popleft()
        if len(answered) + self._in_flight < self._per_window:
            return now
        return answered[0] + WINDOW if answered else None

    def _answer(self, target: str) -> None:
        now = self._clock()
        self._in_flight -= 1
        self._busy_targets[target] -= 1
        if not self._busy_targets[target]:
            del self._busy_targets[target]
        if self._per_window:
            self._answered.append(now)
        if self.per_target:
            self._last_by_target[target] = now
        self._released.set()

    def _forget_expired_holds(self) -> None:
        now = self._clock()
        self._held_until = {t: until for t, until in self._held_until.items() if until > now}
