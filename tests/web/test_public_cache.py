"""The public site under load, by behaviour: each public document is rendered once per change and
answered from memory until then, with validators (304), cache headers a proxy can use, and
compression; reads never wait for a writer."""

from __future__ import annotations

import gzip
import sqlite3
import threading
from datetime import timedelta

import brotli
import pytest
from fastapi.testclient import TestClient

from broadcast.common import utcnow
from broadcast.web import i18n
from broadcast.web.cache import cache_of
from tests.fakes.feeds import FeedServer
from tests.feeds.conftest import at, gauge_rss
from tests.support import auth, new_incident, post_update, token_for, wait_for

DOCUMENTS = ["/", "/incidents/{slug}", "/feed.atom", "/cap.atom", "/updates/{update}.cap"]


@pytest.fixture
def officer(client) -> str:
    return token_for(client.app, "officer", "olga")


@pytest.fixture
def published(client, officer) -> tuple[dict, dict]:
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], body="Zandzakken bij de kerk.")
    return incident, update


def urls(incident: dict, update: dict) -> list[str]:
    return [url.format(slug=incident["slug"], update=update["id"]) for url in DOCUMENTS]


def shows(client, url: str, text: str) -> bool:
    """The page shows ``text`` (on PostgreSQL the change arrives by NOTIFY, a moment later)."""
    return text in client.get(url).text


def renders(client) -> int:
    return cache_of(client.app).renders


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_client_that_has_the_document_gets_304(client, published, document):
    url = document.format(slug=published[0]["slug"], update=published[1]["id"])
    first = client.get(url)
    assert first.status_code == 200 and first.content
    etag, modified = first.headers["etag"], first.headers["last-modified"]

    by_tag = client.get(url, headers={"If-None-Match": etag})
    by_date = client.get(url, headers={"If-Modified-Since": modified})
    other_tag = client.get(url, headers={"If-None-Match": '"something-else"'})

    assert by_tag.status_code == 304 and by_tag.content == b""
    assert by_tag.headers["etag"] == etag
    assert by_date.status_code == 304
    assert other_tag.status_code == 200 and other_tag.content == first.content


def test_public_documents_may_be_kept_by_a_proxy_for_a_short_while(client, published):
    for url in urls(*published):
        response = client.get(url)
        control = response.headers["cache-control"]
        assert control.startswith("public, max-age="), url
        assert "stale-while-revalidate=" in control and "stale-if-error=" in control
        assert response.headers["etag"].startswith('"') and response.headers["last-modified"]
        assert "Accept-Encoding" in response.headers["vary"]
    page = client.get(f"/incidents/{published[0]['slug']}")
    assert "Cookie" in page.headers["vary"]  # the language comes from the cookie


def test_personal_pages_are_never_kept(client, officer, published):
    for url in ["/console/login", "/subscribe", "/api/v1/incidents"]:
        response = client.get(url, headers=auth(officer))
        assert response.headers["cache-control"] == "private, no-store", url
    asked = client.get(f"/incidents/{published[0]['slug']}?asked=1")
    assert asked.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_text_is_compressed_when_the_client_asks(client, officer, published, encoding):
    decode = gzip.decompress if encoding == "gzip" else brotli.decompress
    for url in [*urls(*published), "/static/site.css", "/api/v1/incidents"]:
        plain_headers, plain = sent(client, url, {"Accept-Encoding": "identity", **auth(officer)})
        packed_headers, packed = sent(client, url, {"Accept-Encoding": encoding, **auth(officer)})
        if len(plain) < 500:
            continue  # too small to be worth it
        assert packed_headers["content-encoding"] == encoding, url
        assert "content-encoding" not in plain_headers
        assert decode(packed) == plain
        assert packed_headers.get("etag") != plain_headers.get("etag")


def test_live_events_are_never_compressed(client, published):
    url = f"/incidents/{published[0]['slug']}/events"
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip, br"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        assert next(response.iter_raw()).startswith(b":")  # the first line, as written


def sent(client, url: str, headers: dict) -> tuple[dict, bytes]:
    """Headers and body as sent (httpx would decode gzip and br when reading ``content``)."""
    with client.stream("GET", url, headers=headers) as response:
        return response.headers, b"".join(response.iter_raw())


@pytest.mark.parametrize(
    "change, on_status_page",
    [
        ("publish", True),
        ("correct", True),
        ("retract", False),
        ("promise", True),
        ("resolve", False),
    ],
)
def test_the_pages_show_each_kind_of_change_right_after(
    client, officer, published, change, on_status_page
):
    incident, update = published
    pages = [f"/incidents/{incident['slug']}"] + (["/"] if on_status_page else [])
    for url in [*pages, "/"]:
        client.get(url)  # in the cache now
    if change == "publish":
        post_update(client, officer, incident["id"], body="De dijk houdt.")
        expected = "De dijk houdt."
    elif change == "correct":
        client.post(
            f"/api/v1/updates/{update['id']}/correct",
            json={"body": "Zandzakken bij het gemeentehuis."},
            headers=auth(officer),
        )
        expected = "Zandzakken bij het gemeentehuis."
    elif change == "retract":
        client.post(
            f"/api/v1/updates/{update['id']}/retract",
            json={"reason": "Er zijn geen zandzakken meer."},
            headers=auth(officer),
        )
        expected = "Er zijn geen zandzakken meer."
    elif change == "promise":
        due = utcnow().replace(microsecond=0) + timedelta(days=3, minutes=7)
        post_update(client, officer, incident["id"], body="Kort.", next_update_due=due.isoformat())
        expected = i18n.moment(due, "nl")
    else:
        client.post(
            f"/api/v1/incidents/{incident['id']}/resolve",
            json={"body": "Het gevaar is geweken."},
            headers=auth(officer),
        )
        expected = "Het gevaar is geweken."
        wait_for(lambda: shows(client, "/", 'id="resolved-heading"'))  # listed so
    for url in pages:
        wait_for(lambda url=url: shows(client, url, expected))


def test_a_new_water_level_reading_shows_on_the_incident_page(app_factory):
    with TestClient(app_factory(feed_allow_private_addresses=True)) as client:
        reading_appears_on_the_page(client, token_for(client.app, "officer", "olga"))


def reading_appears_on_the_page(client, officer: str) -> None:
    incident = new_incident(client, officer)
    page = f"/incidents/{incident['slug']}"
    readings = [(at(-h), f"{1000 + h} cm") for h in range(5, 1, -1)]
    with FeedServer() as server:
        server.state.put("/mook.xml", gauge_rss(readings))
        feed = client.post(
            "/api/v1/feeds",
            headers=auth(officer),
            json={
                "url": server.url_for("/mook.xml"),
                "kind": "level",
                "interval_seconds": 300,
                "unit": "cm",
                "name": "Maas bij Mook",
                "incident_id": incident["id"],
            },
        ).json()
        client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=auth(officer))
        wait_for(lambda: shows(client, page, "nu 1002 cm"))
        server.state.put("/mook.xml", gauge_rss([*readings, (at(0), "1234 cm")]))
        client.post(f"/api/v1/feeds/{feed['id']}/poll", headers=auth(officer))
        wait_for(lambda: shows(client, page, "nu 1234 cm"))


def test_a_new_incident_appears_on_the_status_page(client, officer):
    client.get("/")
    new_incident(client, officer, title="Stroomstoring Molenhoek", areas=["molenhoek"])
    wait_for(lambda: shows(client, "/", "Stroomstoring Molenhoek"))


def test_each_document_is_rendered_once_per_change_not_once_per_view(client, officer):
    seen: list[str] = []  # on PostgreSQL events arrive by NOTIFY, after the API has answered
    client.app.state.db.bus.listen(lambda event: seen.append(event.get("kind")))
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"], body="Zandzakken bij de kerk.")
    wait_for(lambda: seen.count("published") == 1 and seen.count("public") == 1)
    url = f"/incidents/{incident['slug']}"
    before = renders(client)
    for _ in range(5):
        assert "Zandzakken bij de kerk." in client.get(url).text
    assert renders(client) == before + 1  # one render, then four times from memory

    post_update(client, officer, incident["id"], body="Nieuwe stand.")
    wait_for(lambda: seen.count("published") == 2)
    for _ in range(5):
        assert "Nieuwe stand." in client.get(url).text
    assert renders(client) == before + 2  # one render for the change
    english = client.get(f"{url}?lang=en")
    assert english.status_code == 200 and renders(client) == before + 3  # per language


def test_a_page_is_read_while_another_connection_holds_the_write_lock(client, published, settings):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock; PostgreSQL readers never wait for row locks")
    incident, _ = published
    writer = sqlite3.connect(settings.database_url.split("///", 1)[-1], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, held as a long publish would hold it
    answers: dict[str, int] = {}

    def read() -> None:
        cache_of(client.app).invalidate()  # a real read, not the copy in memory
        for url in [f"/incidents/{incident['slug']}", "/healthz", "/feed.atom"]:
            answers[url] = client.get(url).status_code

    try:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=20)  # generous; a waiting read would wait out the 30 s busy time-out
        assert not reader.is_alive(), "a read waited for the write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert set(answers.values()) == {200}


def test_a_change_is_never_hidden_from_if_modified_since(client, officer, published):
    """Even when it happens within the second of the previous version."""
    incident, _ = published
    url = f"/incidents/{incident['slug']}"
    before = client.get(url).headers["last-modified"]
    post_update(client, officer, incident["id"], body="Binnen dezelfde seconde.")
    wait_for(lambda: shows(client, url, "Binnen dezelfde seconde."))
    again = client.get(url, headers={"If-Modified-Since": before})
    assert again.status_code == 200 and "Binnen dezelfde seconde." in again.text
