"""Behaviour of the pure feed-parsing layer against real fixtures and small built feeds."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broadcast.feeds.parse.cap import CapAlert, parse_cap
from broadcast.feeds.parse.parsing import (
    FeedError,
    entry_key,
    parse_json,
    parse_levels,
    parse_value,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FEEDS = FIXTURES / "feeds"
CAP = FIXTURES / "cap"


def feed(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def cap_file(name: str) -> bytes:
    return (CAP / name).read_bytes()


def only_alert(content: bytes) -> tuple[CapAlert, list[str]]:
    result = parse_cap(content)
    assert len(result.alerts) == 1
    return result.alerts[0], result.warnings


# --- parse_value -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,5 cm", (1234.5, "cm")),
        ("12,47 m NAP", (12.47, "m NAP")),
        ("16.3 ft", (16.3, "ft")),
        ("-0,35 m", (-0.35, "m")),
        ("1,234.5", (1234.5, None)),
        ("Waterstand Venlo: 1150 cm", (1150.0, "cm")),
        ("10.5", (10.5, None)),
        ("Maas bij Mook: 12,47 m NAP", (12.47, "m NAP")),
        ("Mook:-0,35 m +NAP", (-0.35, "m +NAP")),
        ("peil 12,5cm t.o.v. NAP", (12.5, "cm t.o.v. NAP")),
        ("\u221212 cm", (-12.0, "cm")),
        ("afvoer 35 m3/s", (35.0, "m3/s")),
        ("1.234.567", (1234567.0, None)),
        ("stand 12 uur", (12.0, None)),  # a word is not a unit
        ("Depth:10km", (10.0, "km")),
        ("CALVINIA-19", (19.0, None)),  # a hyphen after a letter is not a minus sign
    ],
)
def test_parse_value_reads_dutch_and_english_notation(text, expected):
    assert parse_value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234 cm", (1234.0, "cm")),  # cm/mm never carry three decimals: thousands
        ("1,234 mm", (1234.0, "mm")),
        ("1.234 m", (1.234, "m")),  # any other unit: decimal
        ("1,234 m NAP", (1.234, "m NAP")),
        ("1.234", (1.234, None)),  # no unit: decimal
        ("0,125 cm", (0.125, "cm")),  # a leading zero is always decimal
        ("1234,567 cm", (1234.567, "cm")),  # 4 leading digits cannot be a thousands group
        ("12,5 cm", (12.5, "cm")),  # not exactly 3 digits after the mark: decimal
    ],
)
def test_parse_value_resolves_a_single_ambiguous_separator_by_unit(text, expected):
    assert parse_value(text) == expected


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("H120 cm, Q 35 m3/s", r"Q\s*(\d+)", (35.0, "m3/s")),
        ("H120 cm, Q 35 m3/s", r"H(\d+)", (120.0, "cm")),
        ("stand: 1.234 cm (gisteren 1.100 cm)", r"stand: (\S+)", (1234.0, "cm")),
        ("Venlo 12 uur: 1150 cm", r":\s*(\S+ cm)", (1150.0, "cm")),
        ("geen meting", r"stand (\d+)", None),
        ("Q onbekend", r"Q (\d+)?", None),  # optional group that did not take part
    ],
)
def test_parse_value_uses_group_one_of_a_pattern(text, pattern, expected):
    assert parse_value(text, pattern) == expected


@pytest.mark.parametrize("text", ["", "geen meting", "12.34.56"])
def test_parse_value_returns_none_without_a_readable_number(text):
    assert parse_value(text) is None


# --- entry_key ---------------------------------------------------------------------------


def test_entry_key_is_the_entry_id_when_present():
    assert entry_key({"id": " urn:rws:mook ", "title": "x"}) == "urn:rws:mook"


def test_entry_key_hashes_link_title_and_date_without_an_id():
    entry = {"link": "https://x/1", "title": "Mook: 12 m", "updated": "2024-01-01T00:00:00Z"}
    key = entry_key(entry)
    assert len(key) == 64
    assert entry_key(dict(entry)) == key  # re-published: same key
    assert entry_key({**entry, "updated": "2024-01-01T01:00:00Z"}) != key


# --- parse_levels: small built feeds -----------------------------------------------------

MAAS_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Waterstanden Maas</title>
<item><guid>rws-mook</guid><title>Maas bij Mook: 12,47 m NAP</title>
  <pubDate>Tue, 10 Dec 2024 15:00:00 +0100</pubDate></item>
<item><guid>rws-venlo</guid><title>Maas bij Venlo</title>
  <description>&lt;p&gt;Waterstand: &lt;b&gt;1.150 cm&lt;/b&gt;&lt;/p&gt;</description>
  <pubDate>Tue, 10 Dec 2024 15:10:00 +0100</pubDate></item>
<item><guid>rws-roermond</guid><title>Maas bij Roermond: geen meting</title>
  <pubDate>Tue, 10 Dec 2024 15:00:00 +0100</pubDate></item>
<item><title>Maas bij Grave: 8,10 m NAP</title></item>
</channel></rss>"""

MAAS_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Maas</title><id>urn:maas</id>
<updated>2024-12-10T15:00:00+01:00</updated>
<entry><title>Maas bij Borgharen: 44,31 m NAP</title><link href="https://x/borgharen"/>
  <updated>2024-12-10T15:00:00+01:00</updated></entry>
<entry><id>urn:maas:eijsden</id><title>Maas bij Eijsden: 1.234</title>
  <published>2024-12-10T13:30:00Z</published></entry>
</feed>"""


def test_parse_levels_reads_dutch_gauge_titles_from_rss():
    result = parse_levels(MAAS_RSS)
    mook, venlo = result.readings
    assert (mook.value, mook.unit, mook.station) == (12.47, "m NAP", "Maas bij Mook")
    assert mook.observed_at == datetime(2024, 12, 10, 14, 0, tzinfo=UTC)
    assert mook.title == "Maas bij Mook: 12,47 m NAP"
    # value from the HTML summary; the title then names the station
    assert (venlo.value, venlo.unit, venlo.station) == (1150.0, "cm", "Maas bij Venlo")


def test_parse_levels_skips_entries_without_value_or_time_with_a_warning():
    warnings = parse_levels(MAAS_RSS).warnings
    assert any("Roermond" in w and "no value" in w for w in warnings)
    assert any("Grave" in w and "no updated/published time" in w for w in warnings)


def test_parse_levels_key_is_stable_per_observation():
    first = parse_levels(MAAS_RSS).readings[0]
    assert first.key == "rws-mook@2024-12-10T14:00:00+00:00"
    assert parse_levels(MAAS_RSS).readings[0].key == first.key
    later = MAAS_RSS.replace(b"15:00:00 +0100", b"16:00:00 +0100", 1)
    assert parse_levels(later).readings[0].key != first.key


def test_parse_levels_reads_atom_updated_else_published():
    borgharen, eijsden = parse_levels(MAAS_ATOM).readings
    assert (borgharen.value, borgharen.unit) == (44.31, "m NAP")
    assert borgharen.observed_at == datetime(2024, 12, 10, 14, 0, tzinfo=UTC)
    assert len(borgharen.key.partition("@")[0]) == 64  # no id: hashed
    assert eijsden.observed_at == datetime(2024, 12, 10, 13, 30, tzinfo=UTC)
    assert eijsden.key.startswith("urn:maas:eijsden@")


def test_parse_levels_configured_unit_fills_in_and_resolves_ambiguity_only_from_text():
    eijsden = parse_levels(MAAS_ATOM, unit="cm").readings[1]
    assert (eijsden.value, eijsden.unit) == (1.234, "cm")  # the rule looks at the text's unit


def test_parse_levels_warns_when_text_unit_differs_from_configured_unit():
    result = parse_levels(MAAS_ATOM, unit="cm")
    assert result.readings[0].unit == "m NAP"
    assert any("differs from the configured 'cm'" in w for w in result.warnings)


def test_parse_levels_applies_value_pattern_to_title_then_summary():
    rss = b"""<rss version="2.0"><channel><item><guid>a</guid><title>Lobith 2024</title>
    <description>H=1420 cm Q=5600 m3/s</description>
    <pubDate>Tue, 10 Dec 2024 15:00:00 GMT</pubDate></item></channel></rss>"""
    (reading,) = parse_levels(rss, value_pattern=r"Q=(\S+)").readings
    assert (reading.value, reading.unit) == (5600.0, "m3/s")


def test_parse_levels_empty_well_formed_feed_gives_a_warning():
    result = parse_levels(b'<rss version="2.0"><channel><title>leeg</title></channel></rss>')
    assert result.readings == []
    assert result.warnings == ["feed is well-formed but has no entries"]


def test_parse_levels_refuses_a_str_so_it_never_becomes_a_url():
    with pytest.raises(TypeError):
        parse_levels("https://example.org/feed.xml")  # type: ignore[arg-type]


def test_parse_levels_refuses_a_broken_pattern_early():
    with pytest.raises(re.error):
        parse_levels(MAAS_RSS, value_pattern="(")


# --- fixtures/feeds: every file ----------------------------------------------------------

# file -> ("levels", readings) | ("error", text in the reason) | ("cap", alerts)
FEED_EXPECTATIONS = {
    "feedparser_bozo_aaa_illformed.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_bogus_encoding.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_invalid-bytes-with-bom.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_linenoise.xml": ("levels", 0),
    "feedparser_bozo_rss_empty_document.xml": ("error", "no entries and bozo"),
    "feedparser_bozo_rss_incomplete_cdata.xml": ("levels", 0),
    "feedparser_bozo_undeclared_namespace.xml": ("error", "no entries and bozo"),
    "feedparser_illformed_georss_polygon_insufficient_coords.xml": ("levels", 0),
    "feedparser_illformed_http_high_bit_date.xml": ("levels", 0),
    "feedparser_wellformed_georss_polygon.xml": ("levels", 0),
    "gdacs_rss_2019-12-30_bom.xml": ("levels", 2),
    "meteoalarm_legacy_atom_poland_2023-04-28.xml": ("cap", 2),
    "nws_alerts_cap_atom_index_2018-08-15.xml": ("cap", 163),
}


def test_every_feed_fixture_has_an_expectation():
    assert {p.name for p in FEEDS.glob("*.xml")} == set(FEED_EXPECTATIONS)


@pytest.mark.parametrize(("name", "expected"), sorted(FEED_EXPECTATIONS.items()))
def test_feed_fixture_is_read_or_refused_with_a_reason(name, expected):
    kind, detail = expected
    if kind == "error":
        with pytest.raises(FeedError, match=detail):
            parse_levels(feed(name))
    elif kind == "levels":
        assert len(parse_levels(feed(name)).readings) == detail
    else:
        assert len(parse_cap(feed(name)).alerts) == detail


@pytest.mark.parametrize(
    "name",
    ["feedparser_bozo_linenoise.xml", "feedparser_bozo_rss_incomplete_cdata.xml"],
)
def test_bozo_feed_with_entries_is_used_with_the_bozo_reason_as_warning(name):
    warnings = parse_levels(feed(name)).warnings
    assert warnings[0].startswith("feed is not well-formed (bozo), entries used anyway: ")


@pytest.mark.parametrize("name", sorted(FEED_EXPECTATIONS))
def test_feed_fixture_never_fails_with_anything_but_feed_error(name):
    for parse in (parse_levels, parse_cap):
        try:
            parse(feed(name))
        except FeedError as exc:
            assert str(exc)


def test_gdacs_feed_with_bom_parses_with_a_pattern():
    result = parse_levels(feed("gdacs_rss_2019-12-30_bom.xml"), value_pattern=r"Magnitude (\S+)M")
    (quake,) = result.readings
    assert quake.value == 5.5
    assert quake.key.startswith("EQ1199929@")
    assert quake.observed_at == datetime(2019, 12, 28, 15, 36, 35, tzinfo=UTC)
    assert len(result.warnings) == 3  # cyclone and two droughts have no magnitude


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nws_alerts_cap_atom_index_2018-08-15.xml", "a CAP index feed"),
        ("meteoalarm_legacy_atom_poland_2023-04-28.xml", "a CAP index feed"),
    ],
)
def test_parse_levels_refuses_cap_indexes(name, reason):
    with pytest.raises(FeedError, match=reason):
        parse_levels(feed(name))


@pytest.mark.parametrize("path", sorted(CAP.glob("*.xml")), ids=lambda p: p.name)
def test_parse_levels_refuses_cap_alerts(path):
    with pytest.raises(FeedError, match="a CAP alert, not a level feed"):
        parse_levels(path.read_bytes())


# --- parse_cap: CAP indexes --------------------------------------------------------------


def test_nws_index_yields_every_entry_with_cap_fields():
    result = parse_cap(feed("nws_alerts_cap_atom_index_2018-08-15.xml"))
    events = Counter(alert.event for alert in result.alerts)
    assert len(result.alerts) == 163
    assert events["Flood Warning"] == 22
    assert events["Flood Advisory"] == 21
    assert events["Flash Flood Warning"] == 13
    assert any("CAP 1.1" in w for w in result.warnings)


def test_nws_index_entry_fields():
    first = parse_cap(feed("nws_alerts_cap_atom_index_2018-08-15.xml")).alerts[0]
    assert first.identifier.endswith("AFGNPWNSB.e9d4afdcacb3b7015f58bccc1db60d46")
    assert (first.status, first.msg_type, first.severity) == ("Actual", "Alert", "Severe")
    assert first.sent == datetime(2018, 8, 15, 22, 52, tzinfo=UTC)  # from <published>
    assert first.expires == datetime(2018, 8, 16, 15, 0, tzinfo=UTC)
    assert first.areas == ["Eastern Beaufort Sea Coast"]
    assert first.geocodes == [("FIPS6", "002185"), ("UGC", "AKZ204")]  # not the VTEC parameter
    assert first.polygons == []  # empty <cap:polygon> is dropped
    assert first.link == first.identifier


def test_nws_index_keeps_filled_polygons():
    alerts = parse_cap(feed("nws_alerts_cap_atom_index_2018-08-15.xml")).alerts
    flood = [a for a in alerts if a.event == "Flash Flood Warning"]
    assert all(a.polygons and a.polygons[0].count(",") >= 4 for a in flood)


def test_meteoalarm_index_entry_fields():
    alert = parse_cap(feed("meteoalarm_legacy_atom_poland_2023-04-28.xml")).alerts[0]
    assert alert.identifier == "2.49.0.0.616.0.PL.230427122201.PL805_00731"
    assert alert.msg_type == "Alert"  # from cap:message_type
    assert alert.geocodes == [("EMMA_ID", "PL805")]
    assert alert.areas == ["Eastern coastal zone"]
    assert alert.onset == datetime(2023, 4, 27, 12, 30, tzinfo=UTC)
    assert alert.sent == datetime(2023, 4, 27, 12, 22, 1, tzinfo=UTC)
    assert alert.link == (
        "https://feeds.meteoalarm.org/api/v1/warnings/feeds-poland/"
        "3adfb5e8-78f3-4240-bc8e-4b6a4da41c3b"
    )


def test_cap_index_entry_without_status_is_skipped_with_a_warning():
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"
      xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2"><id>x</id><title>t</title>
    <entry><id>e1</id><title>Hoogwater</title><updated>2024-01-01T00:00:00Z</updated>
      <cap:msgType>Alert</cap:msgType></entry></feed>"""
    result = parse_cap(atom)
    assert result.alerts == []
    assert "no cap:status" in result.warnings[-1]


def test_rss_cap_index_with_another_prefix_is_read():
    rss = b"""<rss version="2.0" xmlns:c="urn:oasis:names:tc:emergency:cap:1.2"><channel>
    <item><guid>n1</guid><title>Hoogwater Maas</title>
      <pubDate>Tue, 10 Dec 2024 15:00:00 GMT</pubDate>
      <c:status>Actual</c:status><c:msgType>update</c:msgType>
      <c:references>vr,first,2024-12-10T14:00:00+01:00</c:references>
      <c:areaDesc>Venlo</c:areaDesc><c:areaDesc>Roermond</c:areaDesc>
      <c:geocode><valueName>CBS</valueName><value>GM0983</value></c:geocode>
    </item></channel></rss>"""
    (alert,) = parse_cap(rss).alerts
    assert (alert.identifier, alert.msg_type, alert.references) == ("n1", "Update", ["first"])
    assert alert.areas == ["Venlo", "Roermond"]
    assert alert.geocodes == [("CBS", "GM0983")]


# --- parse_cap: single CAP documents -----------------------------------------------------

# file -> identifier, msgType, references, language, areas, geocodes[0], polygons, warning
CAP_EXPECTATIONS = {
    "cap12_spec_appendix_A1.xml": ("43b080713727", "Alert", [], "en-US", 1, None, 0, None),
    "cap12_spec_appendix_A2.xml": (
        "KSTO1055887203", "Alert", [], "en-US", 1, ("SAME", "006109"), 1, None,
    ),
    "cap12_spec_appendix_A3.xml": (
        "TRI13970876.2", "Update", ["TRI13970876.1"], "en-US", 1, None, 0, "<circle>",
    ),
    "cap12_spec_appendix_A4.xml": (
        "KAR0-0306112239-SW", "Alert", [], "en-US", 1, ("SAME", "006037"), 0, None,
    ),
    "ea_severe_flood_warning_wainfleet_2020-02-16.xml": (
        "50385fcb0ab7aa447bbd46d848ce8466E", "Update", ["4f6d28b10ab7aa447bbd46d85f1e9effE"],
        "en-GB", 1, ("TargetAreaCode", "053FWFSTEEP4"), 1, None,
    ),
    "ipaws_cancel_signed_2019-04-19.xml": (
        "AS-NV-58d33e3a-1f9a-4909-9d59-34e90b33b3e8", "Cancel",
        ["AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd"], None, 0, None, 0,
        "signature not verified",
    ),
    "ipaws_local_area_emergency_alert.xml": (None, "Alert", [], "en-US", 1, None, 1, None),
    "nws_blizzard_warning_cap11_namespace.xml": (
        None, "Alert", [], "en-US", 1, None, 0, "CAP 1.1 namespace",
    ),
    "wcatwc_tsunami_update_PAAQ-4-mg5a94.xml": (
        None, "Update", ["PAAQ-1-mg5a94", "PAAQ-2-mg5a94", "PAAQ-3-mg5a94"], "en-US", 1, None,
        0, "signature not verified",
    ),
}  # fmt: skip


def test_every_cap_fixture_has_an_expectation():
    assert {p.name for p in CAP.glob("*.xml")} == set(CAP_EXPECTATIONS)


@pytest.mark.parametrize(("name", "expected"), sorted(CAP_EXPECTATIONS.items()))
def test_cap_fixture_is_read(name, expected):
    identifier, msg_type, references, language, areas, geocode, polygons, warning = expected
    alert, warnings = only_alert(cap_file(name))
    if identifier:
        assert alert.identifier == identifier
    assert alert.msg_type == msg_type
    assert alert.references == references
    assert alert.language == language
    assert len(alert.areas) == areas
    assert geocode is None or alert.geocodes[0] == geocode
    assert len(alert.polygons) == polygons
    assert alert.sent.tzinfo is UTC
    assert warning is None or any(warning in w for w in warnings)


def test_cap_amber_alert_picks_english_of_two_info_blocks():
    alert, _ = only_alert(cap_file("cap12_spec_appendix_A4.xml"))
    assert (alert.event, alert.headline) == ("Child Abduction", "Amber Alert in Los Angeles County")


def test_cap_cancel_without_info_is_valid():
    alert, _ = only_alert(cap_file("ipaws_cancel_signed_2019-04-19.xml"))
    assert (alert.event, alert.areas, alert.expires) == (None, [], None)
    assert alert.sent == datetime(2019, 4, 19, 17, 46, 20, tzinfo=UTC)


def test_cap_ea_flood_warning_fields():
    alert, _ = only_alert(cap_file("ea_severe_flood_warning_wainfleet_2020-02-16.xml"))
    assert alert.sender == "www.gov.uk/environment-agency"
    assert alert.severity == "Severe"
    assert alert.expires == datetime(2020, 2, 26, 23, 1, 14, tzinfo=UTC)
    assert alert.polygons[0].count(" ") == 28  # 29 points
    assert "you\u2019ve been in contact" in (alert.instruction or "")


def test_cap_11_alert_is_read_with_its_fields():
    alert, _ = only_alert(cap_file("nws_blizzard_warning_cap11_namespace.xml"))
    assert alert.event == "Blizzard Warning"
    assert alert.polygons == []  # empty <polygon>


def cap_doc(infos: str, namespace: str = "urn:oasis:names:tc:emergency:cap:1.2") -> bytes:
    return f"""<alert xmlns="{namespace}"><identifier>vr-1</identifier><sender>vr@nl</sender>
    <sent>2024-12-10T15:00:00+01:00</sent><status>Actual</status><msgType>Alert</msgType>
    <scope>Public</scope>{infos}</alert>""".encode()


def info(language: str, event: str) -> str:
    lang = f"<language>{language}</language>" if language else ""
    return f"""<info>{lang}<category>Met</category><event>{event}</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <area><areaDesc>Venlo</areaDesc></area><area><areaDesc>Venray</areaDesc>
    <geocode><valueName>CBS</valueName><value>GM0984</value></geocode></area></info>"""


@pytest.mark.parametrize(
    ("infos", "event"),
    [
        (
            info("de-DE", "Hochwasser") + info("en-GB", "Flood") + info("nl-NL", "Hoogwater"),
            "Hoogwater",
        ),
        (info("de-DE", "Hochwasser") + info("en-GB", "Flood"), "Flood"),
        (info("de-DE", "Hochwasser") + info("fr-BE", "Crue"), "Hochwasser"),
        (info("fr-BE", "Crue") + info("", "Flood (default en-US)"), "Flood (default en-US)"),
    ],
)
def test_cap_info_choice_prefers_dutch_then_english_then_first(infos, event):
    alert, _ = only_alert(cap_doc(infos))
    assert alert.event == event
    assert alert.areas == ["Venlo", "Venray"]
    assert alert.geocodes == [("CBS", "GM0984")]
    assert alert.sent == datetime(2024, 12, 10, 14, 0, tzinfo=UTC)


# --- parse_cap: refusals -----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>"""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (cap_file("CAP-v1.2.xsd"), "CAP document expected, got root element <schema>"),
        (BILLION_LAUGHS, "refused: .*entity"),
        (XXE, "refused: .*entity"),
        (b"\x00\xffgarbage", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (feed("gdacs_rss_2019-12-30_bom.xml"), "got an RSS feed without cap: elements"),
        (feed("feedparser_wellformed_georss_polygon.xml"), "got an Atom feed without cap:"),
        (cap_doc("", "urn:oasis:names:tc:emergency:cap:1.0"), "unsupported CAP namespace"),
        (cap_doc("").replace(b"<identifier>vr-1</identifier>", b""), "lacks .*identifier"),
        (cap_doc("").replace(b"+01:00", b""), "not ISO-8601 with a time zone"),
    ],
)
def test_parse_cap_refuses_what_it_cannot_read(content, reason):
    with pytest.raises(FeedError, match=reason):
        parse_cap(content)


@pytest.mark.parametrize("content", [BILLION_LAUGHS, XXE])
def test_parse_levels_refuses_entity_declarations(content):
    with pytest.raises(FeedError, match="refused"):
        parse_levels(content)


def test_parse_levels_accepts_a_doctype_without_entities():
    rss = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>t</title><item><title>Lith: 4,2 m NAP</title>
<link>https://x/lith</link></item></channel></rss>"""
    result = parse_levels(rss)
    assert result.readings == []  # RSS 0.91 items carry no date: skipped, not guessed
    assert "no updated/published time" in result.warnings[0]


# --- parse_json --------------------------------------------------------------------------

GAUGES = {
    "type": "FeatureCollection",
    "features": [
        {"properties": {"name": "Mook", "value": 1247, "time": "2024-12-10T15:00:00+01:00"}},
        {"properties": {"name": "Venlo", "value": "11,50", "time": "2024-12-10T14:10:00Z"}},
        {"properties": {"name": "Grave", "value": None, "time": "2024-12-10T14:10:00Z"}},
        {"properties": {"name": "Lith", "value": 420, "time": "2024-12-10T14:10:00"}},
        {"properties": {"name": "Sambeek", "time": "2024-12-10T14:10:00Z"}},
    ],
}


def test_parse_json_reads_values_and_iso_times():
    result = parse_json(
        json.dumps(GAUGES).encode(),
        items_path="features",
        value_path="properties.value",
        time_path="properties.time",
        unit="cm",
    )
    mook, venlo = result.readings
    assert (mook.value, mook.unit) == (1247.0, "cm")
    assert mook.observed_at == datetime(2024, 12, 10, 14, 0, tzinfo=UTC)
    assert (venlo.value, venlo.unit) == (11.5, "cm")
    assert len({mook.key, venlo.key}) == 2
    joined = " | ".join(result.warnings)
    assert "item 2: value None is not a number" in joined  # Grave: gauge offline
    assert "item 3: time '2024-12-10T14:10:00' is not ISO-8601 with a time zone" in joined
    assert "item 4: value_path 'properties.value' failed at 'value'" in joined


def test_parse_json_reads_items_at_a_numeric_path():
    doc = {"data": [{"series": [{"v": "0,35 m", "t": "2024-12-10T14:00:00Z"}]}]}
    (reading,) = parse_json(
        json.dumps(doc).encode(), items_path="data.0.series", value_path="v", time_path="t"
    ).readings
    assert (reading.value, reading.unit) == (0.35, "m")


@pytest.mark.parametrize(
    ("content", "paths", "reason"),
    [
        (b"{not json", ("features", "v", "t"), "not JSON"),
        (b"\xff\xfe\x00", ("features", "v", "t"), "not JSON"),
        (json.dumps(GAUGES).encode(), ("items", "v", "t"), "items_path 'items' failed at 'items'"),
        (json.dumps(GAUGES).encode(), ("features.9", "v", "t"), "failed at '9'"),
        (json.dumps(GAUGES).encode(), ("type", "v", "t"), "is a str, not a list"),
        (
            json.dumps(GAUGES).encode(),
            ("features", "properties.level", "properties.time"),
            "value_path 'properties.level' failed at 'level'",
        ),
        (
            json.dumps(GAUGES).encode(),
            ("features", "properties.value", "properties.when"),
            "time_path 'properties.when' failed at 'when'",
        ),
    ],
)
def test_parse_json_names_the_path_that_failed(content, paths, reason):
    items_path, value_path, time_path = paths
    with pytest.raises(FeedError, match=reason):
        parse_json(content, items_path=items_path, value_path=value_path, time_path=time_path)


def test_parse_json_empty_item_list_gives_a_warning():
    result = parse_json(b'{"features": []}', items_path="features", value_path="v", time_path="t")
    assert result == type(result)([], ["no items at items_path 'features'"])
