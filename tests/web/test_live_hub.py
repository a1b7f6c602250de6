"""The live hub on its own, with the real bus: an event wakes only the clients of its incident,
its card is rendered once per language, and a client that falls behind is closed, not waited for."""

from __future__ import annotations

import asyncio
import threading

from broadcast.events import Bus
from broadcast.web import live


class Cards:
    """Renders a card per language and counts how often it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[int | None, frozenset[str]]] = []

    async def __call__(
        self, slug: str, update_id: int | None, languages: set[str]
    ) -> dict[str, str]:
        self.asked.append((update_id, frozenset(languages)))
        return {language: f"<article>{update_id} {language}</article>" for language in languages}


async def settled() -> None:
    """Every callback and task the event started has run (no clock involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


def published_from_a_worker_thread(bus: Bus, **event) -> None:
    thread = threading.Thread(target=bus.publish, args=({"kind": "live", **event},))
    thread.start()
    thread.join()


async def test_an_event_wakes_only_the_clients_of_its_incident_and_renders_once_per_language():
    bus, cards = Bus(), Cards()
    hub = live.Hub(bus, cards)
    with (
        hub.follow("maas", "nl") as first,
        hub.follow("maas", "nl") as second,
        hub.follow("maas", "en") as english,
        hub.follow("waal", "nl") as elsewhere,
    ):
        published_from_a_worker_thread(bus, update_id=7, slug="maas")
        await settled()

        assert cards.asked == [(7, frozenset({"nl", "en"}))]  # one read, one render per language
        assert hub.renders == 2
        assert first.wake.is_set() and second.wake.is_set() and english.wake.is_set()
        assert [m for _, m in first.backlog] == [live.event_bytes(7, "<article>7 nl</article>")]
        assert first.backlog[0][1] is second.backlog[0][1]  # the same bytes for both
        assert b"7 en" in english.backlog[0][1]
        assert not elsewhere.wake.is_set() and not elsewhere.backlog


async def test_nobody_following_means_nothing_is_rendered():
    bus, cards = Bus(), Cards()
    hub = live.Hub(bus, cards)
    with hub.follow("waal", "nl"):
        published_from_a_worker_thread(bus, update_id=8, slug="maas")
        await settled()
    assert cards.asked == [] and hub.renders == 0


async def test_a_client_that_falls_behind_is_closed_and_the_others_keep_up():
    bus, cards = Bus(), Cards()
    hub = live.Hub(bus, cards)
    with hub.follow("maas", "nl") as slow, hub.follow("maas", "nl") as reading:
        for update_id in range(1, live.BACKLOG + 2):
            published_from_a_worker_thread(bus, update_id=update_id, slug="maas")
            await settled()
            reading.backlog.clear()  # this one reads everything as it comes
        assert slow.closed and not slow.backlog
        assert not reading.closed
    assert hub.clients == {}  # those who left are forgotten


async def test_the_stream_replays_what_was_missed_before_what_is_new():
    bus, cards = Bus(), Cards()
    hub = live.Hub(bus, cards)

    async def missed():
        published_from_a_worker_thread(bus, update_id=3, slug="maas")  # also live meanwhile
        await settled()
        return [(2, "<article>2</article>"), (3, "<article>3 nl</article>")]

    stream = live.stream(hub, "maas", "nl", missed)
    assert (await anext(stream)).startswith(b":")
    assert await anext(stream) == live.event_bytes(2, "<article>2</article>")
    assert await anext(stream) == live.event_bytes(3, "<article>3 nl</article>")
    published_from_a_worker_thread(bus, update_id=4, slug="maas")
    assert await anext(stream) == live.event_bytes(4, "<article>4 nl</article>")  # 3 only once
    await stream.aclose()
    assert hub.clients == {}


def test_an_event_is_written_as_one_sse_event_with_its_id():
    assert live.event_bytes(5, "<p>a</p>\n<p>b</p>") == (
        b"event: update\nid: 5\ndata: <p>a</p>\ndata: <p>b</p>\n\n"
    )
