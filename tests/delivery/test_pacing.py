"""The pacer: evenly spaced sends, no burst over the provider's sliding window when the process
stalls, and none either when requests reach the provider late or out of order: a send counts
from when it is let through until its answer is in. Every test runs on the injected
``virtual_clock``: each ``asyncio.sleep`` (the pacer's and the "provider's" latency) takes
virtual time, so a busy machine cannot change what is measured."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from broadcast.delivery.pacing import Pacer
from channels.base import Limits


def most_in_one_second(times: list[float]) -> int:
    """The most events a strict one-second sliding window would have seen at once."""
    times = sorted(times)
    return max(sum(1 for u in times if t - 1.0 < u <= t) for t in times)


async def test_a_stalled_process_does_not_catch_up_in_a_burst(virtual_clock):
    pacer = Pacer(Limits(per_second=10), clock=virtual_clock)
    granted: list[float] = []

    async def send(n: int) -> None:
        async with pacer.slot(f"chat-{n}"):
            granted.append(virtual_clock())

    tasks = [asyncio.create_task(send(n)) for n in range(25)]
    await asyncio.sleep(0.25)
    virtual_clock.stall(0.6)  # the event loop stalls while six slots pass
    await asyncio.gather(*tasks)

    assert len(granted) == 25
    assert most_in_one_second(granted) <= 10
    assert granted[-1] - granted[0] <= 24 * 0.1 + 0.6 + 1e-9  # the stall costs at most itself


async def test_without_a_stall_the_pace_is_the_declared_rate(virtual_clock):
    pacer = Pacer(Limits(per_second=20), clock=virtual_clock)
    for n in range(41):
        async with pacer.slot(f"chat-{n}"):
            pass
    assert sum(virtual_clock.slept) == pytest.approx(
        2.0
    )  # 40 intervals of 50 ms after the first slot


async def test_requests_that_arrive_late_or_out_of_order_never_overfill_the_window(
    virtual_clock,
):
    """Each request reaches the "provider" at a random moment up to 120 ms after it was let
    through (a slow connection, a busy loop), and is answered right then. Counted from when
    they were let through, 40 per second would put up to 43 arrivals into one second here."""
    pacer, rng, arrivals = Pacer(Limits(per_second=40), clock=virtual_clock), random.Random(7), []

    async def send(n: int) -> None:
        async with pacer.slot(f"chat-{n}"):
            await asyncio.sleep(rng.choice([0.0, 0.0, 0.0, 0.12]) * rng.random())
            arrivals.append(virtual_clock())

    start = virtual_clock()
    await asyncio.gather(*(send(n) for n in range(160)))
    elapsed = virtual_clock() - start

    assert most_in_one_second(arrivals) <= 40
    assert 159 / elapsed >= 0.85 * 40  # the latency costs a little pace, not a lot


async def test_with_every_send_of_a_window_in_flight_the_next_waits_for_an_answer(virtual_clock):
    pacer, answered, granted = Pacer(Limits(per_second=3), clock=virtual_clock), [], []

    async def send(n: int) -> None:
        async with pacer.slot(f"chat-{n}"):
            granted.append(virtual_clock())
            await asyncio.sleep(0.5 if n < 3 else 0.0)
            answered.append(virtual_clock())

    await asyncio.gather(*(send(n) for n in range(4)))
    assert granted[3] == pytest.approx(answered[0] + 1.0)


async def test_a_targets_next_send_waits_its_interval_after_the_answer(virtual_clock):
    pacer = Pacer(Limits(per_second=None, per_target_interval=0.3), clock=virtual_clock)
    events: list[tuple[str, float]] = []

    async def send(latency: float) -> None:
        async with pacer.slot("chat-1"):
            events.append(("granted", virtual_clock()))
            await asyncio.sleep(latency)
            events.append(("answered", virtual_clock()))

    await asyncio.gather(send(0.4), send(0.0))
    (_, first_answer), (_, second_grant) = events[1], events[2]
    assert [kind for kind, _ in events] == ["granted", "answered", "granted", "answered"]
    assert second_grant - first_answer == pytest.approx(0.3)


async def test_a_send_that_fails_or_is_cancelled_still_ends(virtual_clock):
    pacer = Pacer(Limits(per_second=None, per_target_interval=0.2), clock=virtual_clock)
    try:
        async with pacer.slot("chat-1"):
            raise ConnectionError("provider down")
    except ConnectionError:
        pass
    entered, never = asyncio.Event(), asyncio.Event()

    async def stuck_send() -> None:
        async with pacer.slot("chat-2"):
            entered.set()
            await never.wait()

    stuck = asyncio.create_task(stuck_send())
    await entered.wait()
    stuck.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stuck  # it has ended (now, on the clock) before anybody asks again
    for target in ("chat-1", "chat-2"):  # neither waits for ever on a send that never ended
        async with asyncio.timeout(30), pacer.slot(target):
            pass
    assert sum(virtual_clock.slept) == pytest.approx(0.2)  # the interval after the ends
