"""What the write-back makes of a retry: pending until the delivery's time to live is over,
however many attempts that takes, then dead; the last attempt comes when the time runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcast.delivery.jobs import Job, Outcome, OutcomeKind
from broadcast.delivery.models import DeliveryState
from broadcast.delivery.queue import _values_for

QUEUED = datetime(2021, 7, 15, 6, 0, tzinfo=UTC)
TTL = timedelta(hours=4)


def job(attempts: int) -> Job:
    return Job(
        delivery_id=1,
        token="t",
        channel="sms",
        target="s1",
        address="+31612345678",
        language="nl",
        update=None,
        attempts=attempts,
        per_subscriber=True,
        give_up_at=QUEUED + TTL,
    )


def values(attempts: int, at: datetime) -> dict:
    outcome = Outcome(job(attempts), OutcomeKind.retry, error="Twilio error 20503", at=at)
    return _values_for(outcome, 8, 2.0, 900.0)


def test_many_attempts_within_the_time_to_live_keep_it_pending():
    later = values(40, QUEUED + timedelta(hours=1))  # far beyond the old 8 attempts
    assert later["state"] == DeliveryState.pending and later["attempts"] == 41


def test_the_last_attempt_is_due_when_the_time_to_live_ends_then_it_is_dead():
    almost = values(12, QUEUED + TTL - timedelta(seconds=30))  # the back-off would be longer
    assert almost["state"] == DeliveryState.pending
    assert almost["next_attempt_at"] == QUEUED + TTL
    assert values(13, QUEUED + TTL)["state"] == DeliveryState.dead
