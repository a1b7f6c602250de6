"""Retry policy: pure functions, so the back-off can be tested without a clock."""

from __future__ import annotations

import random


def backoff(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the next attempt. The provider's ``retry_after`` wins; otherwise
    exponential back-off with full jitter (spreads a thundering herd after an outage)."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, cap)
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def exhausted(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts
