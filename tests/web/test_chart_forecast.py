"""The expected peak on the public incident page: in words, and on the chart as a dashed forecast
line after "now", beside the measured level and the alert levels (an rws source against the
Rijkswaterstaat stand-in). Set ``BROADCAST_SCREENSHOTS=docs/screenshots`` to save the screenshot."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from broadcast.i18n import translator
from broadcast.web.chart import Series, render
from tests.fakes.rws import RwsServer
from tests.fakes.server import FakeServer
from tests.feeds.conftest import at, feed_settings
from tests.feeds.test_rws import forecast_towards, friday
from tests.support import auth, new_page

SVG = "{http://www.w3.org/2000/svg}"
SHOTS = os.environ.get("BROADCAST_SCREENSHOTS")


def test_the_forecast_is_a_dashed_line_after_now_with_the_peak_in_words():
    now = at(0)
    measured = [(now - timedelta(hours=h), 1300.0 + 2 * (24 - h)) for h in range(24, 0, -1)]
    peak_at = friday(6)
    ahead = [(t, v) for t, v in forecast_towards(peak_at, 1510.0) if t >= now]
    series = Series(
        "7",
        "Venlo",
        "cm",
        measured,
        [1400.0],
        forecast=ahead,
        peak=(peak_at, 1510.0),
        reference="NAP",
    )
    chart = render(series, language="nl", now=now, days=3, _=translator("nl"))
    root = ElementTree.fromstring(chart.svg)
    level, forecast = root.findall(f"{SVG}polyline")
    assert level.get("class") == "level" and level.get("stroke-dasharray") is None
    assert forecast.get("class") == "forecast" and forecast.get("stroke-dasharray")
    now_x = float(root.find(f"{SVG}line[@class='now']").get("x1"))
    xs = [float(p.split(",")[0]) for p in forecast.get("points").split()]
    assert xs[0] <= now_x < xs[1]  # from the latest reading, on after "now"
    assert all(float(p.split(",")[0]) <= now_x for p in level.get("points").split())
    assert root.find(f"{SVG}circle[@class='peak']") is not None
    assert root.find(f"{SVG}line[@class='threshold']") is not None
    assert chart.peak_text == "Verwachte hoogste stand bij Venlo: 15,10 m NAP, vrijdag rond 06:00."
    assert chart.peak_text in chart.caption and "stippellijn" in chart.caption
    english = render(series, language="en", now=now, days=3, _=translator("en"))
    assert english.peak_text == "Expected peak at Venlo: 15.10 m NAP, Friday around 06:00."


@pytest.fixture
def rws() -> Iterator[RwsServer]:
    with RwsServer() as server:
        yield server


def venlo_incident(client, rws: RwsServer) -> dict:
    from broadcast.auth.models import Role
    from broadcast.auth.service import add_user

    now = at(0)
    rws.state.measure(
        "venlo", [(now - timedelta(minutes=10 * k), 1300.0 + (36 - k) * 0.5) for k in range(36)]
    )
    rws.state.forecast("venlo", forecast_towards(friday(6), 1510.0, start=1318.0))
    with client.app.state.db.session_scope() as session:
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
            "url": rws.url,
            "kind": "rws",
            "location": "venlo",
            "name": "Venlo",
            "interval_seconds": 600,
            "incident_id": incident["id"],
            "rules": [{"forecast_peak_above": 1400}],
        },
    )
    assert feed.status_code == 201, feed.text
    polled = client.post(f"/api/v1/feeds/{feed.json()['id']}/poll", headers=officer).json()
    assert polled["status"] == "ok", polled["last_error"]
    return incident


def test_the_incident_page_shows_the_expected_peak_in_words_and_on_the_chart(settings, rws):
    from broadcast.app import create_app
    from channels.platform import PlatformChannel

    app = create_app(feed_settings(settings), schedule=False, channel_classes=[PlatformChannel])
    with TestClient(app) as client:
        incident = venlo_incident(client, rws)
        page = client.get(f"/incidents/{incident['slug']}")
        english = client.get(f"/incidents/{incident['slug']}?lang=en")
    figure = re.search(r"<figure class=\"level-chart\".*?</figure>", page.text, re.S).group(0)
    assert "Verwachte hoogste stand bij Venlo: 15,10 m NAP, vrijdag rond 06:00." in figure
    root = ElementTree.fromstring(re.search(r"<svg.*?</svg>", figure, re.S).group(0))
    assert root.find(f"{SVG}polyline[@class='forecast']") is not None
    assert "1400 cm signaalwaarde" in figure  # the alert level, as today
    assert "Expected peak at Venlo: 15.10 m NAP, Friday around 06:00." in english.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_expected_peak_in_a_browser(settings, rws, browser):
    from broadcast.app import create_app
    from channels.platform import PlatformChannel

    app = create_app(feed_settings(settings), schedule=False, channel_classes=[PlatformChannel])
    with TestClient(app) as client:
        incident = venlo_incident(client, rws)
    served = create_app(feed_settings(settings), schedule=False, channel_classes=[PlatformChannel])
    with FakeServer(served, lifespan="on") as site:
        page = new_page(browser, viewport={"width": 900, "height": 1000})
        page.goto(f"{site.url}/incidents/{incident['slug']}")
        peak = page.locator(".expected-peak")
        assert "15,10 m NAP, vrijdag rond 06:00" in peak.inner_text()
        assert page.locator("svg.chart polyline.forecast").count() == 1
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.locator("figure.level-chart").screenshot(path=f"{SHOTS}/public-expected-peak.png")
        page.close()
