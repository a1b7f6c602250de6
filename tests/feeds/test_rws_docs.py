"""docs/feeds.md, "Worked example: the Maas at Venlo and Mook", against the stand-in of
Rijkswaterstaat's WaterWebservices; and the demo's real Venlo source, seeded disabled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from broadcast.feeds.models import FeedKind, FeedSource
from broadcast.timeline.models import UpdateState
from tests.fakes.rws import RwsServer
from tests.feeds.test_rws import HOUR, forecast_towards, friday

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "feeds.md").read_text(encoding="utf-8")
RULE = {
    "forecast_peak_above": 1400,
    "follow_up_height": 10,
    "follow_up_minutes": 120,
    "severity": "warning",
}


@pytest.fixture
def rws() -> Iterator[RwsServer]:
    with RwsServer() as server:
        yield server


def quoted(text: str) -> str:
    """The blockquote that starts with ``text``, joined into one line."""
    start = DOCS.index("> " + text)
    lines = []
    for line in DOCS[start:].splitlines():
        if not line.startswith(">"):
            break
        lines.append(line.lstrip("> ").strip())
    return " ".join(" ".join(lines).split())


def test_the_worked_example_of_venlo_and_mook(world, rws):
    incident = world.incident(area_codes=["mook", "middelaar", "plasmolen"])
    venlo_peak = friday(6)
    rws.state.forecast("venlo", forecast_towards(venlo_peak, 1510.0))
    rws.state.forecast("mook", forecast_towards(friday(12), 1380.0))
    sources = {
        place: world.add(
            rws.url,
            kind="rws",
            name=place.capitalize(),
            location=place,
            interval_seconds=600,
            incident_id=incident,
            rules=[RULE],
        )
        for place in ("venlo", "mook")
    }
    for source_id in sources.values():
        world.poll(source_id)
    [draft] = world.updates()
    assert draft.state == UpdateState.draft and draft.incident_id == incident
    nl, en = quoted("Verwachte hoogste stand bij Venlo"), quoted("Expected peak at Venlo")
    # the docs quote the Dutch and English halves of one block: split at the English start
    dutch = nl[: nl.index("Expected peak")].strip()
    english = en[en.index("Expected peak") :].strip()
    assert draft.body["nl"] == dutch and draft.body["en"] == english
    for source_id in sources.values():  # the same run again: nothing new
        world.poll(source_id)
    assert len(world.updates()) == 1
    rws.state.forecast("venlo", forecast_towards(venlo_peak + HOUR, 1515.0))
    world.poll(sources["venlo"])
    assert len(world.updates()) == 1
    rws.state.forecast("venlo", forecast_towards(venlo_peak + HOUR, 1535.0))
    world.poll(sources["venlo"])
    follow_up = world.updates()[-1]
    assert follow_up.body["nl"] == quoted("Nieuwe verwachting voor Venlo")


def test_the_demo_seeds_the_real_venlo_source_disabled(settings):
    from broadcast.db import Database
    from broadcast.demo import RWS_URL, seed

    seed(settings)
    db = Database(settings.database_url)
    try:
        with db.session_scope() as session:
            venlo = session.exec(select(FeedSource).where(FeedSource.kind == FeedKind.rws)).one()
            assert venlo.enabled is False and venlo.location == "venlo"
            assert venlo.url == RWS_URL == "https://ddapi20-waterwebservices.rijkswaterstaat.nl"
            assert venlo.rules[0]["forecast_peak_above"] == 1400
    finally:
        db.dispose()
