"""Retry policy: pure functions, so the back-off and the time to live can be tested without a
clock. A delivery is given up by its time to live, not by a count of attempts: an evacuation
message must not die because the provider was down for five minutes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


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


def give_up_at(created_at: datetime | None, ttl_seconds: float) -> datetime | None:
    """When a delivery queued at ``created_at`` stops being tried."""
    return None if created_at is None else created_at + timedelta(seconds=ttl_seconds)


def expired(give_up: datetime | None, at: datetime) -> bool:
    return give_up is not None and at >= give_up
