"""A provider outage, on a clock of the test's own: Twilio's stand-in refuses every call (5xx, a
429 storm, or its port refuses connections) for five minutes of that clock, then recovers.

What must hold: while it is down the lane sends one probe at a time (every
``breaker_probe_seconds`` of the clock), no delivery dies, and once it is back the next probe
closes the breaker within 10 clock seconds and the whole backlog goes out at the provider's
limit: every number exactly once, no 20429. The clock only drives the breaker; sends, the
database and the pacer run for real. Counts, states and order are asserted, never durations.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.common import utcnow
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.breaker import Breaker, State
from broadcast.delivery.dispatcher import Dispatcher
from broadcast.delivery.models import Delivery
from broadcast.fanout.views import UpdateRenderer
from broadcast.subscribers.models import Subscriber, SubscriberState
from tests.support import new_incident, post_update, sms_channel, sms_config, token_for

OUTAGE = 300  # seconds of the test's clock
RESIDENTS = 60  # more than the lane claims at once (2 × 20 for 10/s): a backlog in the table
WAIT = 90.0  # bounds a real wait (a busy machine), asserts no speed


class ManualClock:
    """Time moves only when the test says so; ``sleep`` wakes when it has moved far enough."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)


async def until(condition: Callable[[], object], timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


# --- the breaker alone ------------------------------------------------------------------------


async def test_one_probe_at_a_time_and_its_success_lets_everybody_go():
    clock = ManualClock()
    breaker = Breaker(failures=3, probe_seconds=2.0, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        breaker.failed()
    assert breaker.state == State.closed  # two in a row are not an outage
    breaker.failed()
    assert breaker.state == State.open

    waiters = [asyncio.ensure_future(breaker.admit()) for _ in range(5)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # nobody before the first probe is due
    clock.advance(2.0)
    await until(lambda: sum(w.done() for w in waiters) == 1)
    [probe] = [w for w in waiters if w.done()]
    assert probe.result() is True and breaker.state == State.half_open
    breaker.failed(probe=True)  # still down
    waiters.remove(probe)
    again = asyncio.ensure_future(breaker.admit())
    clock.advance(1.5)
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in [*waiters, again])
    clock.advance(0.5)
    await until(lambda: sum(w.done() for w in [*waiters, again]) == 1)
    breaker.succeeded(probe=True)
    await until(lambda: all(w.done() for w in [*waiters, again]))
    assert sorted(w.result() for w in [*waiters, again]) == [False, False, False, False, True]
    assert breaker.transitions == ["open", "half_open", "open", "half_open", "closed"]
    assert breaker.probes == breaker.probe_answers == 2


async def test_the_providers_retry_after_wins_over_the_probe_interval():
    clock = ManualClock()
    breaker = Breaker(failures=1, probe_seconds=2.0, clock=clock, sleep=clock.sleep)
    breaker.failed(retry_after=30.0)
    waiter = asyncio.ensure_future(breaker.admit())
    clock.advance(29.0)
    await asyncio.sleep(0.01)
    assert not waiter.done()
    clock.advance(1.0)
    await until(waiter.done)
    assert waiter.result() is True


async def test_a_waiting_send_gives_up_when_its_time_to_live_is_over():
    clock = ManualClock()
    breaker = Breaker(failures=1, probe_seconds=2.0, clock=clock, sleep=clock.sleep)
    breaker.failed()
    over = [False]
    prober = asyncio.ensure_future(breaker.admit())
    clock.advance(2.0)
    await until(prober.done)
    waiter = asyncio.ensure_future(breaker.admit(lambda: over[0]))
    over[0] = True
    breaker.failed(probe=True)  # every change wakes the waiters: they look at their time
    await until(waiter.done)
    assert waiter.result() is None


# --- the lane against the Twilio stand-in -----------------------------------------------------


@pytest.fixture
def backlog(app_factory, twilio):
    """An SMS update to RESIDENTS numbers, queued; no dispatcher runs yet."""
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel

    built = app_factory(
        dispatch=False,
        channel_classes=[PlatformChannel, SmsChannel],
        channels={"sms": sms_config(twilio, status_callback=False)},
    )
    numbers = [f"+3161234{n:04d}" for n in range(RESIDENTS)]
    with TestClient(built) as client:
        db = client.app.state.db
        with db.session_scope() as session:
            session.add_all(
                Subscriber(
                    channel="sms", address=n, state=SubscriberState.active, consent_at=utcnow()
                )
                for n in numbers
            )
        officer = token_for(client.app, "officer")
        incident = new_incident(client, officer, areas=[])
        post_update(client, officer, incident["id"], areas=[], body="Evacueer Heijen.")
        yield db, client.app.state.settings, numbers


def sms_rows(db) -> list[Delivery]:
    with db.session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.channel == "sms")))


def begin(outage: str, twilio) -> None:
    if outage == "5xx":
        twilio.state.faults.fail_next(1_000_000, 503)
    elif outage == "429":
        twilio.state.faults.fail_next(1_000_000, 429)
    else:
        twilio.stop()  # its port refuses connections


def end(outage: str, twilio) -> None:
    if outage == "refused":
        twilio.start()
    else:
        twilio.state.faults.clear()


def calls(outage: str, twilio) -> int:
    """Calls the provider refused (or could not take, for a refused connection: the probes)."""
    return len(twilio.state.refusals)


def test_a_five_minute_outage_of_5xx_then_recovery(backlog, twilio):
    outage_then_recovery(backlog, twilio, "5xx")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the lane, not the store
@pytest.mark.parametrize("outage", ["429", "refused"])
def test_a_five_minute_429_storm_or_refused_connection_then_recovery(backlog, twilio, outage):
    outage_then_recovery(backlog, twilio, outage)


def outage_then_recovery(backlog, twilio, outage: str) -> None:
    db, settings, numbers = backlog
    clock = ManualClock()
    channel = sms_channel(twilio, status_callback=False)
    dispatcher = Dispatcher(
        db,
        ChannelSet(active={"sms": channel}),
        settings,
        renderer=UpdateRenderer(settings),
        clock=clock,
        sleep=clock.sleep,
    )
    lane = dispatcher.lanes["sms"]
    breaker = lane.breaker
    threshold, concurrency = settings.breaker_failures, lane.concurrency

    async def scenario() -> dict:
        begin(outage, twilio)
        await dispatcher.start()
        try:
            await until(lambda: breaker.state == State.open)
            before = calls(outage, twilio)
            # Five minutes on the clock, a second at a time; each due probe is answered first.
            for _ in range(OUTAGE):
                due = breaker.state == State.open and clock() + 1 >= breaker.next_probe_at
                answered = breaker.probe_answers
                clock.advance(1.0)
                if due:
                    await until(lambda a=answered: breaker.probe_answers == a + 1)
                    await until(lambda: breaker.state == State.open)
            during = {
                "probes": breaker.probes,
                "calls": calls(outage, twilio) - before,
                "accepted": len(twilio.state.accepted),
                "claimed": len(lane.claimed),
            }
            end(outage, twilio)
            recovered_at = clock()
            while breaker.state != State.closed and clock() - recovered_at < 10:
                answered = breaker.probe_answers
                clock.advance(1.0)
                if breaker.state == State.open and clock() >= breaker.next_probe_at:
                    await until(
                        lambda a=answered: (
                            breaker.probe_answers > a or breaker.state == State.closed
                        )
                    )
            during["closed_after"] = clock() - recovered_at
            during["state_after_recovery"] = breaker.state
            await until(lambda: len(twilio.state.accepted) >= RESIDENTS)
            await until(lambda: {d.state for d in sms_rows(db)} == {"sent"})
            return during
        finally:
            await dispatcher.stop()
            await channel.close()

    during = asyncio.run(scenario())

    # While it was down: one probe every two clock seconds, each alone; nothing got through.
    assert during["accepted"] == 0
    assert during["probes"] == OUTAGE // settings.breaker_probe_seconds
    if outage != "refused":  # the stand-in only counts the calls it received
        assert during["calls"] <= during["probes"] + concurrency  # late answers of older sends
    assert during["claimed"] == 2 * lane.batch  # the rest waited in the table
    # Back within 10 s of the clock, then the whole backlog: each number once, none dead,
    # none refused for going too fast.
    assert during["state_after_recovery"] == State.closed and during["closed_after"] <= 10
    rows = sms_rows(db)
    assert Counter(d.state for d in rows) == {"sent": RESIDENTS}
    assert Counter(to for to, _ in twilio.state.accepted) == dict.fromkeys(numbers, 1)
    assert twilio.state.rate_limited == []
    assert max(d.attempts for d in rows) > 1  # they were tried during the outage
    assert breaker.opened == 1
    assert max(d.attempts for d in rows) <= OUTAGE  # only the probes and the first refusals
    assert sum(d.attempts for d in rows) - RESIDENTS <= during["probes"] + threshold + concurrency
