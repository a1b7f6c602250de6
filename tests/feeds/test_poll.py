"""Polling sources end to end: HTTP from a server on 127.0.0.1, extraction per kind, storage,
failures and their alert, de-duplication across restarts."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from broadcast import metrics, telemetry
from broadcast.feeds.models import FeedStatus
from broadcast.feeds.parse.extract import Options, Parsers
from broadcast.feeds.parse.parsing import FeedError
from tests.fakes.feeds import LARGE_FEED_END, large_rss
from tests.feeds.conftest import World, at, feed_settings, gauge_rss

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# fixtures/feeds as a level source: ("readings", n) or ("error", text of the recorded reason)
LEVEL_EXPECTATIONS = {
    "feedparser_bozo_aaa_illformed.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_bogus_encoding.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_invalid-bytes-with-bom.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_linenoise.xml": ("readings", 0),
    "feedparser_bozo_rss_empty_document.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_rss_incomplete_cdata.xml": ("readings", 0),
    "feedparser_bozo_undeclared_namespace.xml": ("error", "no entries and bozo"),
    "feedparser_illformed_georss_polygon_insufficient_coords.xml": ("readings", 0),
    "feedparser_illformed_http_high_bit_date.xml": ("readings", 0),
    "feedparser_wellformed_georss_polygon.xml": ("readings", 0),
    "gdacs_rss_2019-12-30_bom.xml": ("readings", 2),
    "meteoalarm_legacy_atom_poland_2023-04-28.xml": ("error", "a CAP index feed"),
    "nws_alerts_cap_atom_index_2018-08-15.xml": ("error", "a CAP index feed"),
}
CAP_INDEXES = {
    "meteoalarm_legacy_atom_poland_2023-04-28.xml": 2,
    "nws_alerts_cap_atom_index_2018-08-15.xml": 163,
}


def test_every_feed_fixture_yields_readings_or_a_recorded_reason(world, feed_server):
    assert {p.name for p in (FIXTURES / "feeds").glob("*.xml")} == set(LEVEL_EXPECTATIONS)
    for name, (outcome, detail) in sorted(LEVEL_EXPECTATIONS.items()):
        feed_server.state.put(f"/{name}", (FIXTURES / "feeds" / name).read_bytes())
        source_id = world.add(feed_server.url_for(f"/{name}"))
        world.poll(source_id)
        source = world.source(source_id)
        if outcome == "error":
            assert source.status == FeedStatus.failing, name
            assert detail in source.last_error, (name, source.last_error)
            assert world.readings(source_id) == [], name
        else:
            assert source.status == FeedStatus.ok, (name, source.last_error)
            assert len(world.readings(source_id)) == detail, name
            if detail == 0:  # entries without a value: the reason is recorded
                assert source.last_warning, name


def test_every_cap_document_and_index_yields_its_alerts(world, feed_server):
    documents = sorted((FIXTURES / "cap").glob("*.xml")) + [
        FIXTURES / "feeds" / name for name in CAP_INDEXES
    ]
    for path in documents:
        feed_server.state.put(f"/{path.name}", path.read_bytes(), content_type="application/xml")
        source_id = world.add(feed_server.url_for(f"/{path.name}"), kind="cap")
        world.poll(source_id)
        source = world.source(source_id)
        assert source.status == FeedStatus.ok, (path.name, source.last_error)
        assert len(world.alerts(source_id)) == CAP_INDEXES.get(path.name, 1), path.name
    cap11 = world.source(
        world.add(feed_server.url_for("/nws_blizzard_warning_cap11_namespace.xml"), kind="cap")
    )
    world.poll(cap11.id)
    assert "CAP 1.1" in world.source(cap11.id).last_warning


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("cap/cap12_spec_appendix_A1.xml", "a CAP alert, not a level feed"),
        ("cap/ipaws_cancel_signed_2019-04-19.xml", "a CAP alert, not a level feed"),
    ],
)
def test_a_document_of_another_kind_fails_with_a_clear_reason(world, feed_server, path, reason):
    feed_server.state.put("/doc.xml", (FIXTURES / path).read_bytes())
    source_id = world.add(feed_server.url_for("/doc.xml"), kind="level")
    world.poll(source_id)
    assert reason in world.source(source_id).last_error
    feed_server.state.put("/gauge.xml", gauge_rss([(at(-1), "1120 cm")]))
    cap_source = world.add(feed_server.url_for("/gauge.xml"), kind="cap")
    world.poll(cap_source)
    assert "without cap: elements" in world.source(cap_source).last_error


def test_readings_are_stored_with_value_unit_station_and_time(world, feed_server):
    two_hours_ago = at(-2)
    feed_server.state.put(
        "/mook.xml", gauge_rss([(two_hours_ago, "1.234,5 cm"), (at(-1), "1.240 cm")])
    )
    source_id = world.add(feed_server.url_for("/mook.xml"), unit="cm")
    result = world.poll(source_id)
    assert (result.outcome, result.new_readings) == ("new", 2)
    newest, older = world.readings(source_id)
    assert (newest.value, newest.unit, newest.station) == (1240.0, "cm", "Mook")
    assert (older.value, older.observed_at) == (1234.5, two_hours_ago)


def test_lengths_convert_into_the_configured_unit_and_other_units_are_skipped(world, feed_server):
    feed_server.state.put("/ft.xml", gauge_rss([(at(-1), "16.3 ft"), (at(-2), "35 m3/s")]))
    source_id = world.add(feed_server.url_for("/ft.xml"), unit="m")
    world.poll(source_id)
    (reading,) = world.readings(source_id)
    assert (reading.value, reading.unit) == (pytest.approx(4.968, abs=1e-3), "m")
    assert "cannot be converted" in world.source(source_id).last_warning


def test_json_gauge_readings_with_dotted_paths(world, feed_server):
    document = {"data": {"items": [
        {"meting": {"waarde": 1120}, "tijd": at(-1).isoformat()},
        {"meting": {"waarde": "11,35 m"}, "tijd": at(0).isoformat()},
    ]}}  # fmt: skip
    feed_server.state.put(
        "/api.json", json.dumps(document).encode(), content_type="application/json"
    )
    source_id = world.add(
        feed_server.url_for("/api.json"),
        kind="json",
        unit="cm",
        items_path="data.items",
        value_path="meting.waarde",
        time_path="tijd",
    )
    world.poll(source_id)
    assert [(r.value, r.unit) for r in world.readings(source_id)] == [
        (1135.0, "cm"),
        (1120.0, "cm"),
    ]


def test_a_304_costs_no_parsing_and_a_new_document_is_read(world, feed_server, monkeypatch):
    earlier, later = at(-1), at(0)
    feed_server.state.put("/mook.xml", gauge_rss([(earlier, "1100 cm")]))
    source_id = world.add(feed_server.url_for("/mook.xml"))
    assert world.poll(source_id).outcome == "new"
    before = world.source(source_id).last_polled_at

    def must_not_parse(*args, **kwargs):
        raise AssertionError("a 304 was parsed")

    monkeypatch.setattr(world.poller.parsers, "extract_newest", must_not_parse)
    assert world.poll(source_id).outcome == "not_modified"
    assert feed_server.state.not_modified["/mook.xml"] == 1
    assert world.source(source_id).last_polled_at > before
    monkeypatch.undo()

    feed_server.state.put("/mook.xml", gauge_rss([(earlier, "1100 cm"), (later, "1110 cm")]))
    result = world.poll(source_id)
    assert (result.outcome, result.new_readings) == ("new", 1)


def test_a_restart_reads_nothing_as_new(settings, feed_server):
    feed_server.state.put(
        "/mook.xml", gauge_rss([(at(-2), "1000 cm"), (at(-1), "1120 cm")]), etag=False
    )  # no conditional GET: the whole document is read again
    first = World(feed_settings(settings))
    source_id = first.add(feed_server.url_for("/mook.xml"), rules=[{"above": 1100}])
    assert first.poll(source_id).updates
    first.close()

    restarted = World(feed_settings(settings))
    try:
        result = restarted.poll(source_id)
        assert (result.outcome, result.new_readings, result.updates) == ("unchanged", 0, [])
        assert len(restarted.readings(source_id)) == 2
        assert len(restarted.updates()) == 1
    finally:
        restarted.close()


def test_a_republished_entry_with_a_new_id_but_the_same_observation_is_a_new_reading(
    world, feed_server
):
    """Entry keys are ids; only an entry without an id falls back to link/title/date."""
    no_ids = (
        b"<rss version='2.0'><channel><title>t</title><item><title>Mook: 1100 cm</title>"
        b"<link>http://127.0.0.1/m</link><pubDate>%s</pubDate></item></channel></rss>"
    )
    stamp = at(-1).strftime("%a, %d %b %Y %H:%M:%S GMT").encode()
    feed_server.state.put("/noid.xml", no_ids % stamp, etag=False)
    source_id = world.add(feed_server.url_for("/noid.xml"))
    world.poll(source_id)
    world.poll(source_id)
    assert len(world.readings(source_id)) == 1


def test_a_failing_feed_keeps_its_readings_and_alerts_officers_once_after_n_failures(
    world, feed_server
):
    feed_server.state.put("/mook.xml", gauge_rss([(at(-1), "1100 cm")]))
    source_id = world.add(feed_server.url_for("/mook.xml"))
    world.poll(source_id)
    feed_server.state.fail("/mook.xml", 500)

    for expected in (1, 2):
        assert world.poll(source_id).outcome == "failed"
        source = world.source(source_id)
        assert (source.status, source.consecutive_failures, source.alerting) == (
            FeedStatus.failing,
            expected,
            False,
        )
    assert source.last_error == "HTTP 500 Internal Server Error"
    world.poll(source_id)
    world.poll(source_id)
    source = world.source(source_id)
    assert (source.consecutive_failures, source.alerting) == (4, True)
    assert len(world.audit("feed.alert")) == 1
    assert len(world.audit("feed.failing")) == 1
    assert len(world.readings(source_id)) == 1

    feed_server.state.put("/mook.xml", gauge_rss([(at(-1), "1100 cm")]))
    world.poll(source_id)
    source = world.source(source_id)
    assert (source.status, source.last_error, source.alerting) == (FeedStatus.ok, None, False)
    assert len(world.audit("feed.recovered")) == 1


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            lambda s: s.put(
                "/f.xml",
                b"\x00\xff\x13garbage\x89PNG" * 50,
                content_type="application/octet-stream",
            ),
            "not a feed",
        ),
        (lambda s: s.put("/f.xml", b"x" * 3_000_000), "too large"),
        (lambda s: s.endless("/f.xml"), "download stopped"),
        (lambda s: s.put("/f.xml", b"<rss/>", delay=6), "timed out"),
        (lambda s: (s.redirect("/f.xml", "/g.xml"), s.redirect("/g.xml", "/f.xml")), "redirects"),
        (lambda s: s.fail("/f.xml", 503), "HTTP 503"),
    ],
    ids=["garbage", "oversized", "endless", "slow", "redirect-loop", "http-503"],
)
def test_an_unreadable_feed_is_failing_with_its_reason(world, feed_server, setup, reason):
    setup(feed_server.state)
    source_id = world.add(feed_server.url_for("/f.xml"))
    assert world.poll(source_id).outcome == "failed"
    source = world.source(source_id)
    assert source.status == FeedStatus.failing
    assert reason in source.last_error


def test_a_bozo_feed_with_entries_is_used_and_the_warning_recorded(world, feed_server):
    broken = gauge_rss([(at(-1), "1100 cm")]).replace(b"</channel></rss>", b"</channel></rss")
    feed_server.state.put("/bozo.xml", broken)
    source_id = world.add(feed_server.url_for("/bozo.xml"))
    world.poll(source_id)
    source = world.source(source_id)
    assert source.status == FeedStatus.ok
    assert "bozo" in source.last_warning
    assert [r.value for r in world.readings(source_id)] == [1100.0]


def test_a_failed_parse_keeps_the_old_etag_so_the_document_is_read_again(world, feed_server):
    feed_server.state.put("/mook.xml", b"<html>maintenance</html>", content_type="text/html")
    source_id = world.add(feed_server.url_for("/mook.xml"))
    world.poll(source_id)
    assert world.source(source_id).etag is None
    world.poll(source_id)
    assert feed_server.state.not_modified["/mook.xml"] == 0


def test_metrics_show_each_feeds_health_and_count_the_polls(world, feed_server):
    feed_server.state.put("/mook.xml", gauge_rss([(at(-1), "1120 cm")]))
    feed_server.state.fail("/down.xml", 500)
    healthy = world.add(feed_server.url_for("/mook.xml"), name="Maas bij Mook", unit="cm")
    failing = world.add(feed_server.url_for("/down.xml"), name="Maas bij Venlo")
    before = polls_counted("failed")
    world.poll(healthy)
    for _ in range(2):
        world.poll(failing)

    with world.db.session_scope() as session:
        lines = metrics.exposition(session).decode().splitlines()
    assert f'broadcast_feed_up{{feed="{healthy}",name="Maas bij Mook"}} 1.0' in lines
    assert f'broadcast_feed_up{{feed="{failing}",name="Maas bij Venlo"}} 0.0' in lines
    failures = f'broadcast_feed_consecutive_failures{{feed="{failing}",name="Maas bij Venlo"}} 2.0'
    assert failures in lines
    [success] = [line for line in lines if line.startswith("broadcast_feed_last_success_")]
    assert f'feed="{healthy}"' in success and abs(float(success.split()[-1]) - time.time()) < 60
    assert polls_counted("failed") == before + 2


def polls_counted(outcome: str) -> float:
    sample = telemetry.REGISTRY.get_sample_value("broadcast_feed_polls_total", {"outcome": outcome})
    return sample or 0.0


def test_a_huge_feed_keeps_only_the_newest_entries_and_says_so(settings, feed_server):
    world = World(feed_settings(settings, feed_max_entries=300))
    try:
        feed_server.state.put("/huge.xml", large_rss(2_000))  # oldest first in the document
        source_id = world.add(feed_server.url_for("/huge.xml"), unit="cm")

        first = world.poll(source_id)
        again = world.poll(source_id)

        assert (first.outcome, first.new_readings) == ("new", 300)
        readings = world.readings(source_id)
        assert len(readings) == 300
        newest = LARGE_FEED_END.replace(tzinfo=None)
        assert readings[0].observed_at.replace(tzinfo=None) == newest
        assert readings[-1].observed_at.replace(tzinfo=None) == newest - timedelta(minutes=299)
        assert [r.value for r in readings[:2]] == [1000 + 1999 % 500, 1000 + 1998 % 500]
        source = world.source(source_id)
        assert source.status == FeedStatus.ok
        assert source.last_warning == "kept the 300 newest of 2,000 entries (feed_max_entries)"
        assert (again.outcome, again.new_readings) == ("not_modified", 0)
    finally:
        world.close()


def test_a_huge_feed_stores_nothing_older_on_the_next_full_read(settings, feed_server):
    world = World(feed_settings(settings, feed_max_entries=50))
    try:
        feed_server.state.put("/huge.xml", large_rss(400), etag=False)
        source_id = world.add(feed_server.url_for("/huge.xml"), unit="cm")
        assert world.poll(source_id).new_readings == 50
        feed_server.state.put(
            "/huge.xml", large_rss(401, end=LARGE_FEED_END + timedelta(minutes=1)), etag=False
        )

        result = world.poll(source_id)

        assert (result.outcome, result.new_readings) == ("new", 1)
        assert len(world.readings(source_id)) == 51
    finally:
        world.close()


@pytest.mark.parametrize("workers", [0, 1])
def test_parsing_in_a_worker_process_answers_as_in_the_thread(workers):
    content = large_rss(30)

    parsers = Parsers(workers)
    try:
        kept = parsers.extract_newest("level", content, Options(unit="cm"), 10)
        with pytest.raises(FeedError, match="not a feed"):
            parsers.extract_newest("level", b"<html>no feed</html>", Options(), 10)
    finally:
        parsers.close()

    assert len(kept.readings) == 10
    assert max(r.observed_at for r in kept.readings) == LARGE_FEED_END
    assert kept.warnings == ["kept the 10 newest of 30 entries (feed_max_entries)"]


def test_warnings_of_a_huge_feed_are_bounded():
    items = "".join(f"<item><guid>n{k}</guid><title>geen waarde</title></item>" for k in range(60))
    content = f"<rss version='2.0'><channel><title>x</title>{items}</channel></rss>".encode()

    kept = Parsers(0).extract_newest("level", content, Options(), 10)

    assert len(kept.warnings) == 21
    assert kept.warnings[-1] == "and 40 more warnings"
