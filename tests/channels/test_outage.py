"""A real two-minute provider outage (the issue's acceptance case): Twilio answers 503 to every
call for 120 seconds. With the production back-off (base 2 s, cap 900 s, 8 attempts) every
delivery ends delivered exactly once after the outage, and the retries during it back off
instead of hammering the provider. About four minutes; marked slow, SQLite only."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from broadcast.settings import Settings
from tests.support import counts, new_incident, post_update, subscribe_number, wait_for

OUTAGE_SECONDS = 120.0
RESIDENTS = 20
PRODUCTION = {  # the defaults, which the test settings shorten for every other test
    name: Settings.model_fields[name].default
    for name in ("max_attempts", "retry_base_seconds", "retry_max_seconds")
}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_two_minute_outage_loses_no_delivery_and_is_not_hammered(live, twilio):
    assert PRODUCTION == {"max_attempts": 8, "retry_base_seconds": 2.0, "retry_max_seconds": 900.0}
    app = live(**PRODUCTION)
    numbers = [f"+3161234{n:04d}" for n in range(RESIDENTS)]
    for number in numbers:
        subscribe_number(app, number, [])
    incident = new_incident(app.http, app.officer)

    twilio.state.faults.fail_next(10_000, 503)  # Twilio is down ...
    outage_began = time.time()
    update = post_update(app.http, app.officer, incident["id"], body="Dijkbewaking actief.")
    time.sleep(OUTAGE_SECONDS - (time.time() - outage_began))
    twilio.state.faults.clear()  # ... and back after two minutes
    outage_ended = time.time()
    during = [r for r in twilio.state.refusals if r[1] < outage_ended]
    assert twilio.state.accepted == []  # nothing got through while it was down

    # The last retry of the slowest delivery comes at most 254 s after its first attempt (the
    # time-out is generous: it bounds the wait on a busy machine, it asserts no speed).
    wait_for(lambda: counts(app, update).get("sms") == {"delivered": RESIDENTS}, timeout=400)
    recovered = max(at for _, at in twilio.state.accepted) - outage_ended

    # Delivered exactly once, each number.
    assert sorted(to for to, _ in twilio.state.accepted) == sorted(numbers)
    assert all(len(twilio.state.bodies_to(n)) == 1 for n in numbers)

    # Not hammered: per number at most 7 calls in the two minutes (attempt 8 is due no sooner
    # than 1 + 2 + 4 + ... + 64 = 127 s after the first), each wait at least half of the doubling
    # ceiling (full jitter between c/2 and c, c = 2 s × 2^(n-1)).
    attempts = defaultdict(list)
    for to, at, code in during:
        assert code == 20503
        attempts[to].append(at)
    assert set(attempts) == set(numbers)
    for times in attempts.values():
        assert len(times) <= 7, f"{len(times)} calls for one number during the outage"
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        for n, gap in enumerate(gaps, start=1):
            assert gap >= 0.95 * 2 ** (n - 1), f"retry {n} came after {gap:.2f} s"
    total = len(during)
    print(
        f"\n{RESIDENTS} deliveries, {OUTAGE_SECONDS:.0f} s outage: {total} calls refused during it "
        f"({total / RESIDENTS:.1f} per delivery, {total / OUTAGE_SECONDS:.2f}/s), all delivered "
        f"once, the last {recovered:.1f} s after the outage ended"
    )
