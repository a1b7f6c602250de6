"""One pacer per channel, built from the adapter's declared limits: an overall rate (evenly
spaced slots, never bursts that trip the provider's limiter), a minimum interval per target,
a pause for everybody when the provider refused the channel as a whole ("retry after"), and a
hold on one target when only that recipient was refused (a busy chat, a per-number limit)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from channels.base import Limits

HOLD_MEMORY = 10_000  # targets with a hold remembered at once (holds are rare and short)


class Pacer:
    def __init__(self, limits: Limits, clock=time.monotonic):
        self.interval = 1.0 / limits.per_second if limits.per_second else 0.0
        self.per_target = limits.per_target_interval
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_by_target: dict[str, float] = {}
        self._held_until: dict[str, float] = {}
        # Evenly spaced slots alone are not enough: when the process stalls (a GC pass, a busy
        # CPU), every send whose slot passed meanwhile wakes at once, and together with the
        # sends on time they put more into one second than the provider's sliding window
        # allows. So the sends actually let through are counted too: at most per_second of
        # them in any second.
        per_window = math.floor(limits.per_second) if limits.per_second else 0
        self._granted: deque[float] = deque(maxlen=per_window or None)

    async def acquire(self, target: str) -> None:
        """Wait until one more send to ``target`` keeps within every limit, then claim the slot."""
        while True:
            now = self._clock()
            ready = max(now, self._paused_until, self._target_ready(target))
            if ready > now:
                await asyncio.sleep(ready - now)
                continue
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            if self.per_target:
                self._last_by_target[target] = slot
            if slot > now:
                await asyncio.sleep(slot - now)
            await self._within_window()
            return

    async def _within_window(self) -> None:
        granted = self._granted
        if granted.maxlen is None:
            return
        while len(granted) == granted.maxlen and (wait := granted[0] + 1.0 - self._clock()) > 0:
            await asyncio.sleep(wait)
        granted.append(self._clock())

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

    def _target_ready(self, target: str) -> float:
        ready = self._held_until.get(target, 0.0)
        if self.per_target and target in self._last_by_target:
            ready = max(ready, self._last_by_target[target] + self.per_target)
        return ready

    def forget_idle(self) -> None:
        """Drop per-target history that no longer constrains anything (bounded memory)."""
        horizon = self._clock() - self.per_target
        self._last_by_target = {t: at for t, at in self._last_by_target.items() if at > horizon}
        self._forget_expired_holds()

    def _forget_expired_holds(self) -> None:
        now = self._clock()
        self._held_until = {t: until for t, until in self._held_until.items() if until > now}
