"""``rws`` sources against the Rijkswaterstaat stand-in: measurements become readings (stored once,
level rules apply), forecasts are kept apart and replaced by each run, the expected peak drafts
once per run and a follow-up when it moves; failures back off; the API shows the forecast."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.feeds.models import FeedStatus
from broadcast.timeline.models import UpdateState
from tests.fakes.rws import RwsServer
from tests.feeds.conftest import World, at, feed_settings
from tests.feeds.test_api import (
    make_client,  # noqa: F401  (a fixture)
    token,
)
from tests.support import auth

HOUR = timedelta(hours=1)


@pytest.fixture
def rws() -> Iterator[RwsServer]:
    with RwsServer() as server:
        yield server


def add_rws(world: World, rws: RwsServer, **values) -> int:
    return world.add(rws.url, kind="rws", **({"location": "venlo", "name": "Venlo"} | values))


def friday(hour: int) -> datetime:
    """The first Friday at ``hour``:00 in Amsterdam at least six hours from now: always within
    the seven days of forecast a poll asks for."""
    from zoneinfo import ZoneInfo

    amsterdam = ZoneInfo("Europe/Amsterdam")
    day = datetime.now(amsterdam) + timedelta(hours=6)
    while day.weekday() != 4:
        day += timedelta(days=1)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0).astimezone(UTC)


def forecast_towards(peak_at: datetime, peak: float, start: float = 1300.0) -> list:
    """Hourly forecast points rising to ``peak`` at ``peak_at`` and falling after it."""
    hours = int((peak_at - at(0)) / HOUR)  # whole hours before the peak, all in the future
    rise = [(peak_at - k * HOUR, peak - (peak - start) * k / hours) for k in range(hours, -1, -1)]
    fall = [(peak_at + k * HOUR, peak - 3 * k) for k in range(1, 13)]
    return rise + fall


def test_measurements_are_readings_stored_once_and_level_rules_fire(world, rws):
    incident = world.incident()
    rws.state.measure("venlo", [(at(-3), 1290.0), (at(-2), 1330.0), (at(-1), 1362.0)])
    source_id = add_rws(world, rws, incident_id=incident, rules=[{"above": 1350}])
    first = world.poll(source_id)
    assert first.outcome == "new" and first.new_readings == 3, world.source(source_id).last_error
    readings = world.readings(source_id)
    assert [r.value for r in readings] == [1362.0, 1330.0, 1290.0]
    assert {r.unit for r in readings} == {"cm"} and readings[0].station == "Venlo"
    [draft] = world.updates()
    assert draft.state == UpdateState.draft and "1362 cm" in draft.body["nl"]
    again = world.poll(source_id)  # the same measurements again: nothing new, no second draft
    assert again.new_readings == 0 and len(world.updates()) == 1
    # the request: POST with the location, WATHTE against NAP, meting, in the service's form
    measured, expected = rws.state.requests[:2]
    assert measured["Locatie"] == {"Code": "venlo"}
    metadata = measured["AquoPlusWaarnemingMetadata"]["AquoMetadata"]
    assert metadata["Grootheid"] == {"Code": "WATHTE"} and metadata["Hoedanigheid"] == {
        "Code": "NAP"
    }
    assert metadata["ProcesType"] == "meting"
    assert expected["AquoPlusWaarnemingMetadata"]["AquoMetadata"]["ProcesType"] == "verwachting"
    assert measured["Periode"]["Begindatumtijd"].endswith(".000+01:00")
    # a second poll asks only from the newest stored measurement on
    later = rws.state.requests[2]["Periode"]["Begindatumtijd"]
    assert datetime.fromisoformat(later) == readings[0].observed_at


def test_the_forecast_is_kept_apart_replaced_per_run_and_drafts_the_peak_once(world, rws):
    incident = world.incident()
    peak_at = friday(6)
    rws.state.measure("venlo", [(at(-1), 1290.0)])
    rws.state.forecast("venlo", forecast_towards(peak_at, 1510.0))
    rule = {"forecast_peak_above": 1400, "follow_up_height": 10, "follow_up_minutes": 120}
    source_id = add_rws(world, rws, incident_id=incident, rules=[rule])
    assert world.poll(source_id).outcome == "new"
    assert [r.value for r in world.readings(source_id)] == [1290.0]  # never a forecast value
    [draft] = world.updates()
    assert draft.state == UpdateState.draft
    assert draft.body["nl"].startswith(
        "Verwachte hoogste stand bij Venlo: 15,10 m NAP, vrijdag rond 06:00."
    )
    assert draft.body["en"].startswith("Expected peak at Venlo: 15.10 m NAP, Friday around 06:00.")
    assert world.deliveries() == 0  # a draft reaches nobody
    # the same run again (a window that moved on): no new draft
    assert world.poll(source_id).outcome == "unchanged"
    assert len(world.updates()) == 1
    # a new run that moves the peak by 5 cm and an hour: under both amounts, no follow-up
    rws.state.forecast("venlo", forecast_towards(peak_at + HOUR, 1515.0))
    assert world.poll(source_id).outcome == "new"
    assert len(world.updates()) == 1
    # a new run 20 cm higher: a follow-up that says what was expected before
    rws.state.forecast("venlo", forecast_towards(peak_at + HOUR, 1535.0))
    world.poll(source_id)
    first, follow_up = world.updates()
    assert follow_up.body["nl"].startswith(
        "Nieuwe verwachting voor Venlo: hoogste stand 15,35 m NAP, vrijdag rond 07:00 "
        "(eerder verwacht: 15,10 m NAP, vrijdag rond 06:00)."
    )
    assert "previously expected: 15.10 m NAP, Friday around 06:00" in follow_up.body["en"]
    world.poll(source_id)
    assert len(world.updates()) == 2  # once per run
    # the readings stayed measurements only
    assert [r.value for r in world.readings(source_id)] == [1290.0]


def test_a_peak_under_the_line_drafts_nothing_and_auto_publish_publishes(world, rws):
    incident = world.incident()
    rws.state.forecast("venlo", forecast_towards(friday(6), 1380.0))
    quiet = add_rws(world, rws, incident_id=incident, rules=[{"forecast_peak_above": 1400}])
    world.poll(quiet)
    assert world.updates() == []
    rws.state.forecast("mook", forecast_towards(friday(12), 1450.0))
    loud = add_rws(
        world,
        rws,
        location="mook",
        name="Mook",
        incident_id=incident,
        rules=[{"forecast_peak_above": 1400, "auto_publish": True, "severity": "warning"}],
    )
    world.poll(loud)
    [update] = world.updates()
    assert update.state == UpdateState.published and update.severity == "warning"
    assert "Mook: 14,50 m NAP, vrijdag rond 12:00" in update.body["nl"]


def test_no_data_is_204_not_a_failure_and_errors_back_off(settings, rws):
    world = World(feed_settings(settings))
    try:
        source_id = add_rws(world, rws, interval_seconds=60)
        assert world.poll(source_id).outcome == "unchanged"
        source = world.source(source_id)
        assert source.status == FeedStatus.ok
        assert "no measurements in the period (204 No Content)" in source.last_warning
        rws.state.max_observations = 0
        rws.state.measure("venlo", [(at(-1), 1290.0)])
        failed = world.poll(source_id)
        assert failed.outcome == "failed"
        assert "HTTP 400" in failed.error and "Beperk uw request" in failed.error
        rws.state.max_observations = 160_000
        rws.state.fail_next(500, n=1)
        assert world.poll(source_id).outcome == "failed"  # an officer's poll always goes out
        source = world.source(source_id)
        assert source.consecutive_failures == 2 and source.status == FeedStatus.failing
        hits = sum(rws.state.hits.values())
        # two failures: the scheduled poll waits two intervals after the last one
        assert world.poller.poll(source_id, scheduled=True).outcome == "backoff"
        assert sum(rws.state.hits.values()) == hits
        assert world.poll(source_id).outcome == "new"
        assert world.source(source_id).status == FeedStatus.ok
    finally:
        world.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "an rws source needs a location"),
        ({"location": "Venlo!"}, "an rws source needs a location"),
        ({"location": "venlo", "quantity": "WAT HTE"}, "quantity must be an Aquo code"),
        ({"location": "venlo", "unit": "m"}, "takes its unit from the service"),
        ({"location": "venlo", "rules": [{"forecast_peak_above": "hoog"}]}, "rules[0]"),
        (
            {
                "location": "venlo",
                "rules": [{"forecast_peak_above": 1400, "template": {"nl": "{x}"}}],
            },
            "unknown placeholder",
        ),
    ],
)
def test_invalid_rws_sources_are_422_with_the_reason(make_client, fields, message):  # noqa: F811
    with make_client() as client:
        officer = auth(token(client, "officer", "olga"))
        body = {"url": "http://127.0.0.1:9/", "kind": "rws", "interval_seconds": 300} | fields
        answer = client.post("/api/v1/feeds", json=body, headers=officer)
        assert answer.status_code == 422, answer.text
        assert message in answer.text
        level = {"url": "http://127.0.0.1:9/x", "kind": "level", "interval_seconds": 300}
        for extra in ({"location": "venlo"}, {"rules": [{"forecast_peak_above": 1}]}):
            refused = client.post("/api/v1/feeds", json=level | extra, headers=officer)
            assert refused.status_code == 422, refused.text


def test_get_feed_shows_the_forecast_and_its_peak(make_client, rws):  # noqa: F811
    peak_at = friday(6)
    rws.state.measure("venlo", [(at(-1), 1290.0)])
    rws.state.forecast("venlo", forecast_towards(peak_at, 1510.0))
    with make_client() as client:
        officer = auth(token(client, "officer", "olga"))
        body = {"url": rws.url, "kind": "rws", "location": "venlo", "interval_seconds": 300}
        created = client.post("/api/v1/feeds", json=body, headers=officer)
        assert created.status_code == 201, created.text
        feed = created.json()
        assert feed["quantity"] == "WATHTE" and feed["reference"] == "NAP"
        assert feed["forecast"] is None
        polled = client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer).json()
        assert polled["status"] == "ok", polled["last_error"]
        forecast = client.get(f"/api/v1/feeds/{feed['id']}", headers=officer).json()["forecast"]
        assert forecast["peak"]["value"] == 1510.0 and forecast["peak"]["unit"] == "cm"
        assert datetime.fromisoformat(forecast["peak"]["at"]) == peak_at
        assert forecast["issued_at"]
        values = [p["value"] for p in forecast["points"]]
        top = values.index(1510.0)  # oldest first: rising to the peak, falling after it
        assert values[: top + 1] == sorted(values[: top + 1])
        assert values[top:] == sorted(values[top:], reverse=True)
        readings = client.get(f"/api/v1/feeds/{feed['id']}/readings", headers=officer).json()
        assert [r["value"] for r in readings] == [1290.0]
