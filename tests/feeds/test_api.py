"""``/api/v1/feeds`` as officers, volunteers and strangers use it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from tests.fakes.feeds import large_rss
from tests.feeds.conftest import at, feed_settings, gauge_rss
from tests.support import auth


@pytest.fixture
def make_client(settings):
    """An app without the scheduler, so that only the test polls."""
    from broadcast.app import create_app
    from channels.platform import PlatformChannel
    from channels.webhook import WebhookChannel

    def build(**overrides):
        app = create_app(
            feed_settings(settings, **overrides),
            schedule=False,
            channel_classes=[PlatformChannel, WebhookChannel],
        )
        return TestClient(app)

    return build


@pytest.fixture
def client(make_client):
    with make_client() as test_client:
        yield test_client


def token(client, role: str, name: str) -> str:
    with client.app.state.db.session_scope() as session:
        return add_user(session, name=name, role=Role(role))[1]


@pytest.fixture
def officer(client):
    return auth(token(client, "officer", "olga"))


def add_feed(client, officer, url, **fields):
    body = {"url": url, "kind": "level", "interval_seconds": 300, "unit": "cm"} | fields
    response = client.post("/api/v1/feeds", json=body, headers=officer)
    assert response.status_code == 201, response.text
    return response.json()


ENDPOINTS = [
    (
        "post",
        "/api/v1/feeds",
        {"url": "http://127.0.0.1/x", "kind": "level", "interval_seconds": 300},
    ),
    ("get", "/api/v1/feeds", None),
    ("get", "/api/v1/feeds/1", None),
    ("patch", "/api/v1/feeds/1", {"interval_seconds": 600}),
    ("delete", "/api/v1/feeds/1", None),
    ("post", "/api/v1/feeds/1/poll", None),
    ("get", "/api/v1/feeds/1/readings", None),
    ("get", "/api/v1/feeds/1/alerts", None),
]


def call(client, method, path, body, headers=None):
    kwargs = {"headers": headers or {}}
    if body is not None:
        kwargs["json"] = body
    return client.request(method.upper(), path, **kwargs)


def test_feeds_are_for_officers_only(client, officer):
    add_feed(client, officer, "http://127.0.0.1:9/mook.xml")
    volunteer = auth(token(client, "volunteer", "vera"))
    for method, path, body in ENDPOINTS:
        anonymous = call(client, method, path, body)
        assert anonymous.status_code == 401, (method, path)
        assert "detail" in anonymous.json()
        assert call(client, method, path, body, volunteer).status_code == 403, (method, path)
    admin = auth(token(client, "admin", "ada"))
    assert client.get("/api/v1/feeds/1", headers=admin).status_code == 200


def test_a_new_feed_answers_201_with_its_id_and_an_unpolled_status(client, officer):
    feed = add_feed(
        client,
        officer,
        "http://127.0.0.1:9/mook.xml",
        name="Mook",
        rules=[{"above": 1100, "reset_below": 1050}],
    )
    assert isinstance(feed["id"], int)
    assert (feed["status"], feed["last_error"], feed["last_polled_at"]) == ("ok", None, None)
    assert (feed["origin"], feed["alerting"], feed["latest"]) == ("api", False, None)
    assert client.get(f"/api/v1/feeds/{feed['id']}", headers=officer).json() == feed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "rss"}, "kind"),
        ({"url": "ftp://127.0.0.1/x"}, "http or https"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"kind": "json"}, "items_path, value_path and time_path"),
        ({"value_pattern": "(unclosed"}, "not a regular expression"),
        ({"incident_id": 999}, "incident 999 not found"),
        ({"areas": ["atlantis"]}, "unknown area"),
        ({"rules": [{"above": 10, "reset_below": 20}]}, "reset_below must not be above"),
        ({"kind": "cap", "rules": [{"above": 10}]}, "min_severity"),
    ],
)
def test_invalid_feeds_are_422_with_the_reason(client, officer, fields, message):
    body = {"url": "http://127.0.0.1/x", "kind": "level", "interval_seconds": 300} | fields
    response = client.post("/api/v1/feeds", json=body, headers=officer)
    assert response.status_code == 422, response.text
    assert message in str(response.json()["detail"])


def test_poll_now_answers_like_get_and_readings_are_newest_first(client, officer, feed_server):
    feed_server.state.put("/mook.xml", gauge_rss([(at(-2), "1080 cm"), (at(-1), "1120 cm")]))
    incident = client.post(
        "/api/v1/incidents",
        headers=officer,
        json={"title": "Hoogwater Maas", "severity": "advisory", "areas": ["mook"]},
    ).json()
    feed = add_feed(
        client,
        officer,
        feed_server.url_for("/mook.xml"),
        incident_id=incident["id"],
        rules=[{"above": 1100, "reset_below": 1050}],
    )

    polled = client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer)

    assert polled.status_code == 200, polled.text
    body = polled.json()
    assert body == client.get(f"/api/v1/feeds/{feed['id']}", headers=officer).json()
    assert (body["status"], body["last_error"]) == ("ok", None)
    assert body["last_polled_at"] is not None
    assert body["latest"]["value"] == 1120
    readings = client.get(f"/api/v1/feeds/{feed['id']}/readings", headers=officer).json()
    assert [(r["value"], r["unit"]) for r in readings] == [(1120, "cm"), (1080, "cm")]
    polled_by = client.get("/api/v1/audit", params={"action": "feed.poll"}, headers=officer)
    assert [(e["actor"], e["subject"]) for e in polled_by.json()["items"]] == [
        ("olga", f"feed:{feed['id']}")
    ]
    assert set(readings[0]) >= {"value", "unit", "observed_at"}
    limited = client.get(f"/api/v1/feeds/{feed['id']}/readings?limit=1", headers=officer).json()
    assert len(limited) == 1

    updates = client.get(f"/api/v1/incidents/{incident['id']}", headers=officer).json()["updates"]
    assert [(u["state"], u["source"]) for u in updates] == [("draft", "feed")]
    assert (
        client.get(f"/api/v1/updates/{updates[0]['id']}/deliveries", headers=officer).json() == {}
    )
    assert "boven de signaalwaarde" not in client.get(f"/incidents/{incident['slug']}").text


def test_polling_a_45000_entry_feed_keeps_the_newest_500_and_says_so(make_client, feed_server):
    feed_server.state.put("/huge.xml", large_rss(45_000))  # 4.6 MB, legal RSS
    with make_client(feed_max_bytes=5_000_000) as client:
        officer = auth(token(client, "officer", "olga"))
        feed = add_feed(client, officer, feed_server.url_for("/huge.xml"))

        body = client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer).json()
        readings = client.get(
            f"/api/v1/feeds/{feed['id']}/readings?limit=10000", headers=officer
        ).json()

    assert (body["status"], body["last_error"]) == ("ok", None)
    assert body["last_warning"] == "kept the 500 newest of 45,000 entries (feed_max_entries)"
    assert len(readings) == 500
    assert readings[0]["value"] == 1000 + 44_999 % 500
    assert readings[-1]["value"] == 1000 + 44_500 % 500


def test_a_failing_poll_shows_status_and_error(client, officer, feed_server):
    feed_server.state.fail("/down.xml", 500)
    feed = add_feed(client, officer, feed_server.url_for("/down.xml"))
    body = client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer).json()
    assert (body["status"], body["last_error"], body["consecutive_failures"]) == (
        "failing",
        "HTTP 500 Internal Server Error",
        1,
    )
    assert body["last_polled_at"] is not None


def test_a_feed_can_be_changed_and_removed(client, officer):
    feed = add_feed(client, officer, "http://127.0.0.1:9/mook.xml")
    changed = client.patch(
        f"/api/v1/feeds/{feed['id']}",
        headers=officer,
        json={"rules": [{"above": 1200}], "interval_seconds": 600},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rules"], changed.json()["interval_seconds"]) == ([{"above": 1200}], 600)
    bad = client.patch(f"/api/v1/feeds/{feed['id']}", headers=officer, json={"rules": [{}]})
    assert bad.status_code == 422
    assert client.delete(f"/api/v1/feeds/{feed['id']}", headers=officer).status_code == 204
    assert client.get(f"/api/v1/feeds/{feed['id']}", headers=officer).status_code == 404


def test_feeds_from_the_settings_file_are_listed_and_changed_only_there(make_client):
    configured = [
        {
            "name": "Maas bij Mook",
            "url": "http://127.0.0.1:9/mook.xml",
            "kind": "level",
            "interval_seconds": 600,
            "unit": "cm",
            "areas": ["mook"],
            "rules": [{"above": 1100, "reset_below": 1050}],
        },
        {
            "name": "broken",
            "url": "http://127.0.0.1:9/x",
            "kind": "nonsense",
            "interval_seconds": 600,
        },
    ]
    with make_client(feeds=configured) as client:
        officer = auth(token(client, "officer", "olga"))
        (feed,) = client.get("/api/v1/feeds", headers=officer).json()
        assert (feed["name"], feed["origin"], feed["rules"]) == (
            "Maas bij Mook",
            "config",
            [{"above": 1100, "reset_below": 1050}],
        )
        assert client.delete(f"/api/v1/feeds/{feed['id']}", headers=officer).status_code == 409
        assert (
            client.patch(
                f"/api/v1/feeds/{feed['id']}", headers=officer, json={"enabled": False}
            ).status_code
            == 409
        )
    configured[0]["interval_seconds"] = 900
    with make_client(feeds=configured[:1]) as client:  # a restart with a changed file
        officer = auth(token(client, "officer", "otto"))
        (feed,) = client.get("/api/v1/feeds", headers=officer).json()
        assert feed["interval_seconds"] == 900
    with make_client(feeds=[]) as client:  # removed from the file: disabled, readings kept
        officer = auth(token(client, "officer", "olav"))
        (feed,) = client.get("/api/v1/feeds", headers=officer).json()
        assert feed["enabled"] is False


def test_the_openapi_document_describes_the_feed_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/api/v1/feeds"]["post"]["summary"] == "Add a feed source"
    assert "201" in paths["/api/v1/feeds"]["post"]["responses"]
    assert paths["/api/v1/feeds/{feed_id}/poll"]["post"]["summary"] == "Poll a feed source now"
    schema = paths["/api/v1/feeds/{feed_id}/readings"]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"]["type"] == "array"


def test_feeds_are_read_from_feeds_tables_of_the_toml_file(settings, tmp_path, monkeypatch):
    from broadcast.feeds import service
    from broadcast.settings import Settings
    from tests.feeds.conftest import World

    config = tmp_path / "broadcast.toml"
    config.write_text("""
[[feeds]]
name = "Maas bij Mook"
url = "https://gauges.example.nl/maas/mook.rss"
kind = "level"
interval_seconds = 300
unit = "m NAP"
areas = ["mook", "middelaar", "plasmolen"]

[[feeds.rules]]
above = 13.5
reset_below = 13.3
severity = "warning"

[[feeds.rules]]
rise_cm_per_hour = 20
""")
    monkeypatch.setenv("BROADCAST_CONFIG", str(config))
    from_file = Settings(database_url=settings.database_url, areas_file=settings.areas_file)
    world = World(feed_settings(from_file))
    try:
        with world.db.session_scope() as session:
            (source,) = service.listing(session)
        assert (source.config_name, source.unit, source.interval_seconds) == (
            "Maas bij Mook",
            "m NAP",
            300,
        )
        assert source.rules == [
            {"above": 13.5, "reset_below": 13.3, "severity": "warning"},
            {"rise_cm_per_hour": 20},
        ]
        assert source.areas == ["mook", "middelaar", "plasmolen"]
    finally:
        world.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/feed.xml",
        "http://127.0.0.1:22/",
        "http://localhost/feed.xml",
    ],
)
def test_a_feed_on_a_private_address_is_refused_with_422(make_client, url):
    with make_client(feed_allow_private_addresses=False) as client:
        officer = auth(token(client, "officer", "olga"))
        body = {"url": url, "kind": "level", "interval_seconds": 300}
        created = client.post("/api/v1/feeds", json=body, headers=officer)
        listed = client.get("/api/v1/feeds", headers=officer).json()

    assert created.status_code == 422, created.text
    assert "non-public address" in created.json()["detail"]
    assert listed == []


def test_a_feed_in_the_settings_file_on_a_private_address_is_skipped(settings):
    from broadcast.feeds import service
    from tests.feeds.conftest import World

    common = {"kind": "level", "interval_seconds": 300}
    feeds = [
        {"name": "Binnen", "url": "http://10.0.0.1/feed.xml"} | common,
        {"name": "Mook", "url": "https://gauges.example.nl/mook.rss"} | common,
    ]
    world = World(feed_settings(settings, feeds=feeds, feed_allow_private_addresses=False))
    try:
        with world.db.session_scope() as session:
            assert [s.config_name for s in service.listing(session)] == ["Mook"]
            problems = service.sync_config(session, feeds, min_interval=1)
    finally:
        world.close()
    assert len(problems) == 1 and "10.0.0.1 is a non-public address" in problems[0]


def test_poll_now_runs_on_the_pollers_threads_not_the_request_pool(client, officer, feed_server):
    """A slow or huge feed must not hold one of the threads that serve every other request."""
    import threading

    feed_server.state.put("/mook.xml", gauge_rss([(at(-1), "1080 cm")]))
    feed = add_feed(client, officer, feed_server.url_for("/mook.xml"))
    poller = client.app.state.feeds
    seen = []
    poll = poller.poll

    def recording(source_id):
        seen.append(threading.current_thread().name)
        return poll(source_id)

    poller.poll = recording
    body = client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=officer).json()

    assert body["status"] == "ok", body["last_error"]
    assert body["latest"]["value"] == 1080
    assert len(seen) == 1 and seen[0].startswith("feed-poll")
