"""One pacer per channel, built from the adapter's declared limits: an overall rate (evenly
spaced slots, never bursts that trip the provider's limiter), a minimum interval per target,
and a pause for everybody when the provider answered "retry after"."""

from __future__ import annotations

import asyncio
import time

from channels.base import Limits


class Pacer:
    def __init__(self, limits: Limits, clock=time.monotonic):
        self.interval = 1.0 / limits.per_second if limits.per_second else 0.0
        self.per_target = limits.per_target_interval
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_by_target: dict[str, float] = {}

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
            return

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _target_ready(self, target: str) -> float:
        if not self.per_target or target not in self._last_by_target:
            return 0.0
        return self._last_by_target[target] + self.per_target

    def forget_idle(self) -> None:
        """Drop per-target history that no longer constrains anything (bounded memory)."""
        horizon = self._clock() - self.per_target
        self._last_by_target = {t: at for t, at in self._last_by_target.items() if at > horizon}
