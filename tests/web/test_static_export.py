"""``broadcast publish-static`` and ``BROADCAST_STATIC_DIR``: a static copy of the public site
that holds, file for file, the bytes the application serves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broadcast.cli import app as cli
from broadcast.events import Bus
from broadcast.incidents.models import Incident
from broadcast.web import static_export
from tests.conftest import ROOT
from tests.media.conftest import jpeg_with_gps, upload
from tests.support import auth, new_incident, post_update, token_for, wait_for

FROZEN = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.fixture
def frozen_cap_index(monkeypatch):
    """``/cap.atom`` carries the time it was made; the same instant for the copy and the check."""
    monkeypatch.setattr("broadcast.web.cap.utcnow", lambda: FROZEN)


@pytest.fixture
def site(client, frozen_cap_index):
    """Two incidents, a correction, a retraction and a photo on a published update."""
    officer = token_for(client.app, "officer")
    flood = new_incident(client, officer)
    first = post_update(client, officer, flood["id"], body={"nl": "Water stijgt.", "en": "Rising."})
    client.post(
        f"/api/v1/updates/{first['id']}/correct",
        json={"body": "Water stijgt snel."},
        headers=auth(officer),
    )
    draft = post_update(
        client, officer, flood["id"], draft=True, body="Zandzakken bij de brandweer"
    )
    assert upload(client, officer, draft["id"], jpeg_with_gps()).status_code == 201
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    storm = new_incident(client, officer, title="Storm", severity="advisory")
    wrong = post_update(client, officer, storm["id"], body="Bomen omgewaaid")
    client.post(
        f"/api/v1/updates/{wrong['id']}/retract", json={"reason": "Fout"}, headers=auth(officer)
    )
    return {"officer": officer, "flood": flood, "storm": storm, "first": first, "wrong": wrong}


def export(client, directory: Path) -> static_export.Export:
    return client.portal.call(static_export.publish, client.app, directory)


def url_of(file: str) -> str:
    """The request the application answers with the file (the layout nginx maps back)."""
    query = ""
    if file.startswith("en/"):
        file, query = file.removeprefix("en/"), "?lang=en"
    if file == "index.html":
        return "/" + query
    return "/" + file.removesuffix("/index.html") + query


def test_every_file_holds_what_the_application_serves(client, site, tmp_path):
    directory = tmp_path / "site"

    result = export(client, directory)

    files = set(result.files)
    slug = site["flood"]["slug"]
    assert {"index.html", "en/index.html", f"incidents/{slug}/index.html"} <= files
    assert {f"en/incidents/{slug}/index.html", "feed.atom", "cap.atom", "static/live.js"} <= files
    assert f"updates/{site['first']['id']}.cap" in files
    assert any(f.startswith("media/") for f in files), "the photo the page shows"
    for file in files:
        client.cookies.clear()
        if file.startswith("u/"):
            answer = client.get(url_of(file), follow_redirects=False)
            location = answer.headers["location"]
            assert (directory / file).read_bytes() == static_export.redirect_page(location)
            continue
        answer = client.get(url_of(file))
        assert answer.status_code == 200, file
        assert (directory / file).read_bytes() == answer.content, file
    english = (directory / "en" / "incidents" / slug / "index.html").read_text()
    assert 'lang="en"' in english and "Rising." in english


def test_a_new_export_replaces_the_whole_tree(client, site, app_factory, tmp_path):
    directory = tmp_path / "site"
    first = export(client, directory)
    old_slug = site["storm"]["slug"]
    assert (directory / "incidents" / old_slug / "index.html").exists()
    (directory / "left-over.html").write_text("not from the application")
    photo = next(f for f in first.files if f.startswith("media/"))
    photo_inode = (directory / photo).stat().st_ino

    with client.app.state.db.session_scope() as session:  # the old address is gone
        storm = session.get(Incident, site["storm"]["id"])
        storm.slug = "storm-hernoemd"
        session.add(storm)
    second = export(client, directory)

    assert directory.is_symlink() and directory.resolve() == second.tree
    assert not (directory / "incidents" / old_slug).exists()
    assert (directory / "incidents" / "storm-hernoemd" / "index.html").exists()
    assert not (directory / "left-over.html").exists()
    assert not first.tree.exists(), "older copies are removed"
    assert (directory / photo).stat().st_ino == photo_inode, "media are linked, not read again"


def test_a_directory_not_made_by_the_export_is_left_alone(client, site, tmp_path):
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "precious.txt").write_text("keep")

    with pytest.raises(static_export.ExportFailed):
        export(client, directory)

    assert (directory / "precious.txt").read_text() == "keep"


def test_the_setting_exports_at_start_and_after_each_change(app_factory, tmp_path):
    from fastapi.testclient import TestClient

    directory = tmp_path / "site"
    with TestClient(app_factory(static_dir=str(directory))) as client:
        exporter = client.app.state.static_export
        wait_for(lambda: exporter.exports >= 1, timeout=60)
        officer = token_for(client.app, "officer")
        incident = new_incident(client, officer)
        update = post_update(client, officer, incident["id"], body="Dijk houdt het.")

        cap_file = directory / "updates" / f"{update['id']}.cap"
        wait_for(lambda: cap_file.exists() and exporter.exports >= 2, timeout=60)
        assert exporter.failures == 0
        page = directory / "incidents" / incident["slug"] / "index.html"
        assert "Dijk houdt het." in page.read_text()


async def test_events_during_an_export_cause_exactly_one_more():
    bus, running, release = Bus(), asyncio.Event(), asyncio.Event()
    started: list[int] = []

    async def slow_export():
        started.append(len(started))
        running.set()
        await release.wait()

    exporter = static_export.AutoExport(bus, slow_export)
    await exporter.start()
    await running.wait()  # the export at start is under way
    for kind in ("published", "live", "published", "overdue"):
        bus.publish({"kind": kind})
    bus.publish({"kind": "queued"})  # a delivery: no public document changes
    for _ in range(5):
        await asyncio.sleep(0)  # let the bus hand the events over
    release.set()
    while exporter.exports < 2:
        await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    await exporter.stop()

    assert exporter.exports == 2 and len(started) == 2


async def test_quiet_events_export_nothing():
    bus = Bus()
    finished = asyncio.Event()

    async def note():
        finished.set()

    exporter = static_export.AutoExport(bus, note)
    await exporter.start()
    await finished.wait()
    for kind in sorted(static_export.QUIET_EVENTS):
        bus.publish({"kind": kind})
    for _ in range(20):
        await asyncio.sleep(0)
    await exporter.stop()

    assert exporter.exports == 1


def test_the_command_writes_the_copy(settings, tmp_path, monkeypatch):
    if not settings.is_sqlite:
        pytest.skip("the command's path is the same on PostgreSQL; once is enough")
    monkeypatch.setenv("BROADCAST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BROADCAST_AREAS_FILE", str(ROOT / "config" / "areas.toml"))
    monkeypatch.setenv("BROADCAST_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("BROADCAST_CHANNELS_ENABLED", "platform")
    monkeypatch.setenv("BROADCAST_LOG_JSON", "false")
    directory = tmp_path / "public"

    outcome = CliRunner().invoke(cli, ["publish-static", str(directory)])

    assert outcome.exit_code == 0, outcome.output
    assert (directory / "index.html").read_bytes().startswith(b"<!doctype html>")
    assert (directory / "cap.atom").exists() and (directory / "static" / "site.css").exists()


def static_server(tree: Path):
    """What nginx does with ``try_files $uri $uri/index.html =404``, and nothing else."""
    from starlette.responses import FileResponse, PlainTextResponse

    async def serve(scope, receive, send):
        relative = scope["path"].lstrip("/")
        for candidate in (tree / relative, tree / relative / "index.html"):
            if candidate.is_file():
                return await FileResponse(candidate)(scope, receive, send)
        return await PlainTextResponse("Not found", status_code=404)(scope, receive, send)

    return serve


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_live_script_on_the_static_copy_gives_up_quietly(client, site, tmp_path):
    from tests.fakes.server import FakeServer
    from tests.support import CHROMIUM, chromium, new_page

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian packages chromium, chromium-driver)")
    directory = tmp_path / "site"
    export(client, directory)
    slug = site["flood"]["slug"]
    errors: list[str] = []
    with (
        FakeServer(static_server(directory.resolve())) as static,
        chromium() as browser,
    ):
        page = new_page(browser)
        page.on("pageerror", lambda error: errors.append(str(error)))
        with page.expect_response(lambda r: r.url.endswith("/events?lang=nl")) as stream:
            page.goto(f"{static.url}/incidents/{slug}")
        state = page.evaluate("document.getElementById('timeline').children.length")
        status = stream.value.status

    assert status == 404  # no event stream: EventSource closes, no retry
    assert errors == []
    assert state >= 3, "the timeline of the copy is shown as it is"
