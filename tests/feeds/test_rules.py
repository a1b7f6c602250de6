"""Rules fire drafts: one per crossing, none while hovering, again after the level fell below
``reset_below``; drafts never reach residents; CAP alerts for our areas, superseded by Cancel."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from broadcast.errors import Invalid
from broadcast.feeds.rules import LevelRule, Memory, Point, RiseRule, evaluate, parse_rules
from broadcast.timeline.models import Source, UpdateState
from tests.feeds.conftest import at, gauge_rss

RULE = {"above": 1100, "reset_below": 1050}


class Gauge:
    """A gauge whose feed grows by one reading per call, an hour apart (the last 48 kept)."""

    def __init__(self, world, server, path="/mook.xml", **source):
        self.world, self.server, self.path = world, server, path
        self.readings: list = []
        self.start = at(-11)
        self.id = world.add(server.url_for(path), unit="cm", name="Mook", **source)

    def read(self, *values: float):
        results = []
        for value in values:
            moment = self.start + timedelta(hours=len(self.readings))
            self.readings.append((moment, f"{value:g} cm"))
            self.server.state.put(self.path, gauge_rss(self.readings[-48:]))
            results.append(self.world.poll(self.id))
        return results


def drafts(world):
    return [u for u in world.updates() if u.state == UpdateState.draft]


def test_a_crossing_makes_exactly_one_draft_and_hovering_no_second(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[RULE])
    gauge.read(1000, 1080, 1099)
    assert world.updates() == []

    gauge.read(1120)
    (draft,) = world.updates()
    assert (draft.state, draft.source, draft.severity) == (
        UpdateState.draft,
        Source.feed,
        "warning",
    )
    assert "Waterstand Mook: 1120 cm" in draft.body["nl"]
    assert "signaalwaarde van 1100 cm" in draft.body["nl"]
    assert "Water level at Mook: 1120 cm" in draft.body["en"]

    gauge.read(1130, 1090, 1060, 1110, 1140)  # hovers, never below 1050
    assert len(world.updates()) == 1
    assert world.deliveries() == 0  # a draft never reaches the outbox


def test_a_fall_below_reset_and_a_new_rise_make_a_second_draft(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[RULE])
    gauge.read(1000, 1120, 1040)
    assert len(drafts(world)) == 1
    gauge.read(1060, 1101)
    assert len(drafts(world)) == 2
    assert "1101 cm" in drafts(world)[-1].body["nl"]
    assert world.deliveries() == 0


def test_one_incident_collects_the_drafts_of_a_source_without_one(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[RULE], areas=["mook"])
    gauge.read(1120, 1000, 1120)
    first, second = world.updates()
    assert first.incident_id == second.incident_id
    assert world.source(gauge.id).incident_id == first.incident_id


def test_drafts_go_to_the_sources_incident_and_a_resolved_one_is_replaced(world, feed_server):
    incident_id = world.incident()
    gauge = Gauge(world, feed_server, rules=[RULE], incident_id=incident_id)
    gauge.read(1120)
    assert world.updates()[0].incident_id == incident_id

    from broadcast.incidents.models import Incident, IncidentStatus

    with world.db.session_scope() as session:
        session.get(Incident, incident_id).status = IncidentStatus.resolved
    gauge.read(1000, 1130)
    assert world.updates()[-1].incident_id not in (None, incident_id)


def test_the_cooldown_holds_back_a_second_draft_until_it_has_passed(world, feed_server):
    rule = RULE | {"cooldown_minutes": 150}
    gauge = Gauge(world, feed_server, rules=[rule])
    gauge.read(1120, 1000)  # fired at t, re-armed at t+1h
    gauge.read(1120)  # t+2h: crossing inside the cooldown
    assert len(world.updates()) == 1
    gauge.read(1130)  # t+3h: still above and the cooldown is over
    assert len(world.updates()) == 2


def test_auto_publish_publishes_and_queues_deliveries(world, feed_server):
    gauge = Gauge(
        world, feed_server, rules=[RULE | {"auto_publish": True, "severity": "emergency"}]
    )
    gauge.read(1120)
    (update,) = world.updates()
    assert (update.state, update.severity) == (UpdateState.published, "emergency")
    assert world.deliveries() > 0


def test_history_in_a_new_feed_makes_one_draft_not_one_per_old_crossing(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[RULE | {"cooldown_minutes": 0}])
    start = at(-10)
    series = [1000, 1120, 1000, 1120, 1000, 1120]
    feed_server.state.put(
        "/mook.xml",
        gauge_rss([(start + timedelta(hours=i), f"{v} cm") for i, v in enumerate(series)]),
    )
    assert len(world.poll(gauge.id).updates) == 1


def test_stale_readings_never_fire(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[RULE])
    feed_server.state.put("/mook.xml", gauge_rss([(at(-48), "1200 cm")]))
    world.poll(gauge.id)
    assert world.updates() == []


def test_a_fast_rise_makes_a_draft_with_the_rate(world, feed_server):
    gauge = Gauge(world, feed_server, rules=[{"rise_cm_per_hour": 15, "window_minutes": 180}])
    gauge.read(1000, 1010, 1020)  # 10 cm per hour
    assert world.updates() == []
    gauge.read(1045)  # 1045 - 1000 over 3 h = 15 cm/h: not above
    assert world.updates() == []
    gauge.read(1080)  # (1080 - 1010) / 3 h = 23.3 cm/h
    (draft,) = world.updates()
    assert "23,33 cm per uur" in draft.body["nl"]
    assert "23.33 cm per hour" in draft.body["en"]


def test_a_custom_template_fills_placeholders(world, feed_server):
    template = {
        "nl": "Let op: {station} staat op {value} {unit} ({time}).",
        "en": "Attention: {station} at {value} {unit}.",
    }
    gauge = Gauge(world, feed_server, rules=[RULE | {"template": template}])
    gauge.read(1120.5)
    body = world.updates()[0].body
    assert body["nl"].startswith("Let op: Mook staat op 1120,5 cm (")
    assert body["en"] == "Attention: Mook at 1120.5 cm."


# --- pure evaluation -------------------------------------------------------------------------


def points(*values, unit="cm"):
    start = at(-len(values))
    return [Point(start + timedelta(hours=i), v, unit) for i, v in enumerate(values)]


def test_evaluate_never_reevaluates_a_reading_it_has_seen():
    rule = LevelRule(above=10, reset_below=5)
    memory = Memory()
    series = points(1, 20)
    assert len(evaluate(rule, memory, series, [], fresh_after=at(-100))) == 1
    memory.armed = True  # even re-armed, the same readings are not evaluated twice
    assert evaluate(rule, memory, series, [], fresh_after=at(-100)) == []


def test_rise_rate_converts_metres_to_centimetres():
    rule = RiseRule(rise_cm_per_hour=10)
    series = points(11.0, 11.2, unit="m NAP")  # 20 cm in one hour
    (firing,) = evaluate(rule, Memory(), series[1:], series, fresh_after=at(-100))
    assert firing.rate == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("kind", "rules", "message"),
    [
        ("level", [{"above": 10, "reset_below": 12}], "reset_below must not be above"),
        ("level", [{"below": 10}], "needs 'above' or 'rise_cm_per_hour'"),
        ("level", [{"above": 10, "colour": "red"}], "Extra inputs are not permitted"),
        ("level", [{"above": 10, "template": {"nl": "{value} {nope}"}}], "unknown placeholder"),
        ("level", [{"rise_cm_per_hour": 5}], "needs a length unit"),
        ("cap", [{"above": 10}], "needs min_severity"),
        ("cap", [{"min_severity": "Terrible"}], "min_severity must be"),
    ],
)
def test_invalid_rules_are_refused_with_the_reason(kind, rules, message):
    with pytest.raises(Invalid, match=message):
        parse_rules(kind, rules, unit=None)


# --- CAP rules ---------------------------------------------------------------------------------


def cap_entry(
    identifier,
    *,
    msg_type="Alert",
    severity="Severe",
    area="Mook; Plasmolen",
    expires_in=6.0,
    references="",
    status="Actual",
    sent_hours=-0.5,
):
    sent = at(sent_hours).isoformat()
    refs = f"<cap:references>{references}</cap:references>" if references else ""
    return f"""<entry><id>{identifier}</id><title>Hoogwater Maas</title>
      <updated>{sent}</updated><author><name>rws</name></author>
      <cap:identifier>{identifier}</cap:identifier><cap:sender>rws@example.nl</cap:sender>
      <cap:sent>{sent}</cap:sent><cap:status>{status}</cap:status>
      <cap:msgType>{msg_type}</cap:msgType><cap:event>Hoogwater</cap:event>
      <cap:severity>{severity}</cap:severity><cap:urgency>Expected</cap:urgency>
      <cap:certainty>Likely</cap:certainty><cap:headline>Hoogwater op de Maas</cap:headline>
      <cap:expires>{at(expires_in).isoformat()}</cap:expires>{refs}
      <cap:areaDesc>{area}</cap:areaDesc></entry>"""


def cap_index(*entries):
    return (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' "
        "xmlns:cap='urn:oasis:names:tc:emergency:cap:1.2'><id>idx</id><title>CAP</title>"
        f"<updated>{at(0).isoformat()}</updated>{''.join(entries)}</feed>"
    ).encode()


@pytest.fixture
def warnings_feed(world, feed_server):
    incident_id = world.incident()  # areas: mook

    def make(*entries, rules=({"min_severity": "Severe"},)):
        feed_server.state.put("/cap.atom", cap_index(*entries), content_type="application/atom+xml")
        if not hasattr(make, "id"):
            make.id = world.add(
                feed_server.url_for("/cap.atom"),
                kind="cap",
                incident_id=incident_id,
                rules=list(rules),
            )
        return world.poll(make.id)

    return make


def test_a_severe_cap_alert_for_our_area_makes_a_draft(world, warnings_feed):
    result = warnings_feed(
        cap_entry("a1"),
        cap_entry("a2", area="Venlo"),
        cap_entry("a3", severity="Moderate"),
        cap_entry("a4", expires_in=-1),
        cap_entry("a5", status="Exercise"),
    )
    assert result.new_alerts == 5
    (draft,) = world.updates()
    assert draft.state == UpdateState.draft
    assert "Waarschuwing van rws@example.nl: Hoogwater op de Maas" in draft.body["nl"]
    assert "Mook; Plasmolen" in draft.body["en"]
    assert world.deliveries() == 0
    warnings_feed(cap_entry("a1"))  # seen before: nothing new
    assert len(world.updates()) == 1


def test_a_cap_update_replaces_the_draft_of_the_alert_it_references(world, warnings_feed):
    warnings_feed(cap_entry("a1"))
    warnings_feed(
        cap_entry("a1"),
        cap_entry(
            "a1-u",
            msg_type="Update",
            severity="Extreme",
            references="rws@example.nl,a1,2024-01-01T00:00:00+01:00",
        ),
    )
    old, new = world.updates()
    assert (old.state, new.state) == (UpdateState.rejected, UpdateState.draft)
    assert "superseded by CAP Update a1-u" in old.reason
    assert new.severity == "emergency"
    a1 = next(a for a in world.alerts(warnings_feed.id) if a.identifier == "a1")
    assert a1.superseded_by == "a1-u"


def test_a_cap_cancel_of_a_published_warning_drafts_the_all_clear(world, warnings_feed):
    warnings_feed(cap_entry("a1"), rules=[{"min_severity": "Severe", "auto_publish": True}])
    (published,) = world.updates()
    assert published.state == UpdateState.published
    warnings_feed(cap_entry("a1-c", msg_type="Cancel", references="rws@example.nl,a1,x"))
    _, notice = world.updates()
    assert notice.state == UpdateState.published  # the rule publishes, so its cancel does too
    assert "heeft de waarschuwing ingetrokken" in notice.body["nl"]


def test_a_cap_rule_with_its_own_areas_matches_geocodes_and_names(world, feed_server):
    feed_server.state.put("/cap.atom", cap_index(cap_entry("l1", area="Limburg")))
    source_id = world.add(
        feed_server.url_for("/cap.atom"),
        kind="cap",
        rules=[{"min_severity": "warning", "areas": ["limburg"]}],
    )
    world.poll(source_id)
    assert len(world.updates()) == 1


def test_the_worked_example_of_docs_feeds_md(world, feed_server):
    """docs/feeds.md: the Maas at Mook, hourly readings in m NAP, a threshold and a rise rule."""
    incident_id = world.incident(area_codes=["mook", "middelaar", "plasmolen"])
    gauge = Gauge(
        world,
        feed_server,
        incident_id=incident_id,
        rules=[
            {"above": 13.5, "reset_below": 13.3, "severity": "warning"},
            {"rise_cm_per_hour": 20, "window_minutes": 180, "severity": "advisory"},
        ],
    )
    with world.db.session_scope() as session:
        from broadcast.feeds.models import FeedSource

        source = session.get(FeedSource, gauge.id)
        source.unit, source.name = "m NAP", "Maas bij Mook"

    def read(*values):
        for value in values:
            moment = gauge.start + timedelta(hours=len(gauge.readings))
            gauge.readings.append((moment, f"{value:.2f}".replace(".", ",") + " m NAP"))
            feed_server.state.put(gauge.path, gauge_rss(gauge.readings, station="Maas bij Mook"))
            world.poll(gauge.id)

    read(13.20, 13.31, 13.44)
    assert world.updates() == []
    read(13.62)
    (draft,) = world.updates()
    assert draft.state == UpdateState.draft and draft.severity == "warning"
    assert re.fullmatch(
        r"Waterstand Maas bij Mook: 13,62 m NAP om \d\d-\d\d-\d{4} \d\d:\d\d\. Dat is boven de "
        r"signaalwaarde van 13,5 m NAP\. We houden de situatie in de gaten en melden het als er "
        r"iets verandert\.",
        draft.body["nl"],
    )
    assert draft.body["en"].startswith("Water level at Maas bij Mook: 13.62 m NAP at ")
    read(13.48, 13.55, 13.41)
    assert len(world.updates()) == 1
    read(13.10, 13.60)
    assert len(world.updates()) == 2
    assert world.deliveries() == 0
