"""The water-level chart: an inline SVG on the public incident page, with its text alternative."""

from __future__ import annotations

import re
from datetime import timedelta
from xml.etree import ElementTree

from fastapi.testclient import TestClient

from broadcast.i18n import translator
from broadcast.web.chart import Series, render
from tests.feeds.conftest import at, feed_settings, gauge_rss
from tests.support import auth

SVG = "{http://www.w3.org/2000/svg}"


def series(values, thresholds=(1100,), station="Mook"):
    start = at(-len(values))
    points = [(start + timedelta(hours=i), v) for i, v in enumerate(values)]
    return Series("1", station, "cm", points, list(thresholds))


def test_the_chart_is_well_formed_svg_with_the_level_and_the_threshold():
    chart = render(series([1000, 1050, 1120]), language="nl", now=at(0), days=3, _=translator("nl"))
    root = ElementTree.fromstring(chart.svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Waterstand Mook"
    (line,) = root.findall(f"{SVG}polyline")
    assert len(line.get("points").split()) == 3
    (threshold,) = root.findall(f"{SVG}line[@class='threshold']")
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "1100 cm signaalwaarde" in labels
    # the threshold line sits between the lowest and the highest reading, drawn upside down
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    assert ys[-1] < float(threshold.get("y1")) < ys[0]
    assert chart.caption.startswith("Waterstand Mook: nu 1120 cm (")
    assert "hoogste 1120, laagste 1000 cm" in chart.caption
    assert "Signaalwaarde 1100 cm." in chart.caption
    assert chart.rows[0][1] == "1120 cm"


def test_the_chart_escapes_station_names_and_speaks_english():
    chart = render(
        series([10.5, 11.25], thresholds=(), station="<Mook & Co>"),
        language="en",
        now=at(0),
        days=2,
        _=translator("en"),
    )
    ElementTree.fromstring(chart.svg)  # still well-formed
    assert "&lt;Mook &amp; Co&gt;" in chart.svg
    assert chart.caption.startswith("Water level <Mook & Co>: now 11.25 cm")


def test_a_flat_line_and_many_points_still_render():
    flat = render(series([1000] * 3), language="nl", now=at(0), days=1)
    ElementTree.fromstring(flat.svg)
    many = render(series([1000 + i % 50 for i in range(2000)]), language="nl", now=at(0), days=90)
    (line,) = ElementTree.fromstring(many.svg).findall(f"{SVG}polyline")
    assert len(line.get("points").split()) <= 601
    assert len(many.rows) <= 12


def test_the_incident_page_shows_the_chart_without_javascript(settings, feed_server):
    from broadcast.app import create_app
    from broadcast.auth.models import Role
    from broadcast.auth.service import add_user
    from channels.platform import PlatformChannel

    readings = [(at(-h), f"{1000 + 10 * (30 - h)} cm") for h in range(30, 0, -1)]
    feed_server.state.put("/mook.xml", gauge_rss(readings))
    app = create_app(feed_settings(settings), schedule=False, channel_classes=[PlatformChannel])
    with TestClient(app) as client:
        with app.state.db.session_scope() as session:
            officer = auth(add_user(session, name="olga", role=Role.officer)[1])
        incident = client.post(
            "/api/v1/incidents",
            headers=officer,
            json={"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook"]},
        ).json()
        feed = client.post(
            "/api/v1/feeds",
            headers=officer,
            json={
                "url": feed_server.url_for("/mook.xml"),
                "kind": "level",
                "interval_seconds": 300,
                "unit": "cm",
                "name": "Maas bij Mook",
                "incident_id": incident["id"],
                "rules": [{"above": 1250, "reset_below": 1200}],
            },
        ).json()
        client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer)

        page = client.get(f"/incidents/{incident['slug']}")
        english = client.get(f"/incidents/{incident['slug']}?lang=en")

    assert page.status_code == 200
    figure = re.search(r"<figure class=\"level-chart\".*?</figure>", page.text, re.S).group(0)
    svg = re.search(r"<svg.*?</svg>", figure, re.S).group(0)
    root = ElementTree.fromstring(svg)
    assert len(root.find(f"{SVG}polyline").get("points").split()) == 30
    assert root.find(f"{SVG}line[@class='threshold']") is not None
    assert "1250 cm signaalwaarde" in svg
    assert "<figcaption" in figure and "Waterstand Maas bij Mook: nu 1290 cm" in figure
    assert "<table>" in figure and '<th scope="col">Waterstand</th>' in figure
    assert "<script" not in figure
    assert "Water level Maas bij Mook: now 1290 cm" in english.text
