"""The retry policy: exponential back-off with full jitter in [ceiling/2, ceiling], capped; the
provider's ``retry_after`` wins (but never beyond the cap); attempts run out at the maximum."""

from __future__ import annotations

import random

import pytest

from broadcast.delivery.policy import backoff, exhausted, expired, give_up_at


class Extremes(random.Random):
    """Draws the lowest or the highest value ``uniform`` may return, and records the bounds."""

    def __init__(self, highest: bool):
        super().__init__(0)
        self.highest = highest
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return b if self.highest else a


@pytest.mark.parametrize(
    ("attempts", "ceiling"), [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)]
)
def test_the_ceiling_doubles_with_every_attempt(attempts, ceiling):
    low, high = Extremes(highest=False), Extremes(highest=True)
    assert backoff(attempts, base=2.0, cap=1000.0, rng=low) == ceiling / 2
    assert backoff(attempts, base=2.0, cap=1000.0, rng=high) == ceiling
    assert low.bounds == high.bounds == [(ceiling / 2, ceiling)]


def test_jitter_stays_within_half_the_ceiling_and_the_ceiling():
    rng = random.Random(13)
    waits = [backoff(4, base=1.0, cap=1000.0, rng=rng) for _ in range(500)]
    assert all(4.0 <= wait <= 8.0 for wait in waits)
    assert len({round(wait, 6) for wait in waits}) > 100  # spread, not one value


def test_the_cap_bounds_the_wait_however_many_attempts():
    rng = Extremes(highest=True)
    assert backoff(50, base=1.0, cap=300.0, rng=rng) == 300.0
    assert rng.bounds == [(150.0, 300.0)]


@pytest.mark.parametrize(("retry_after", "expected"), [(0.0, 0.0), (12.5, 12.5), (900.0, 300.0)])
def test_the_providers_retry_after_wins_up_to_the_cap(retry_after, expected):
    rng = Extremes(highest=True)
    assert backoff(3, base=1.0, cap=300.0, retry_after=retry_after, rng=rng) == expected
    assert rng.bounds == []  # no jitter on the provider's word


def test_a_negative_retry_after_is_ignored():
    rng = Extremes(highest=True)
    assert backoff(2, base=1.0, cap=300.0, retry_after=-1.0, rng=rng) == 2.0


@pytest.mark.parametrize(
    ("attempts", "maximum", "done"), [(0, 3, False), (2, 3, False), (3, 3, True), (4, 3, True)]
)
def test_attempts_run_out_at_the_maximum(attempts, maximum, done):
    assert exhausted(attempts, maximum) is done


def test_the_time_to_live_counts_from_when_the_delivery_was_queued():
    from datetime import UTC, datetime, timedelta

    queued = datetime(2021, 7, 15, 6, 0, tzinfo=UTC)
    give_up = give_up_at(queued, 4 * 3600)
    assert give_up == queued + timedelta(hours=4)
    assert not expired(give_up, queued + timedelta(hours=3, minutes=59))
    assert expired(give_up, give_up)
    assert not expired(None, queued + timedelta(days=30))  # no time to live: never
