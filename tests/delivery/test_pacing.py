"""The pacer: evenly spaced sends, and no burst over the provider's sliding window even when the
process stalls and the sends whose slots passed meanwhile all wake at once."""

from __future__ import annotations

import asyncio
import time

from broadcast.delivery.pacing import Pacer
from channels.base import Limits


def most_in_one_second(times: list[float]) -> int:
    return max(sum(1 for u in times if t - 1.0 < u <= t) for t in times)


async def test_a_stalled_process_does_not_catch_up_in_a_burst():
    pacer = Pacer(Limits(per_second=10))
    granted: list[float] = []

    async def send(n: int) -> None:
        await pacer.acquire(f"chat-{n}")
        granted.append(time.monotonic())

    tasks = [asyncio.create_task(send(n)) for n in range(25)]
    await asyncio.sleep(0.25)
    time.sleep(0.6)  # the event loop stalls while six slots pass
    await asyncio.gather(*tasks)

    assert len(granted) == 25
    assert most_in_one_second(granted) <= 10


async def test_without_a_stall_the_pace_is_the_declared_rate():
    pacer = Pacer(Limits(per_second=20))
    start = time.monotonic()
    for n in range(41):
        await pacer.acquire(f"chat-{n}")
    assert 1.9 <= time.monotonic() - start <= 2.3
