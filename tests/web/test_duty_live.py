"""The reminder before a promised update is late, in a real browser (issue #17 item 9): it
appears on the open console page of the adviser on duty without a reload, and only there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from broadcast.common import utcnow
from tests.fakes.server import FakeServer
from tests.support import auth, new_incident, new_page, post_update, remind_at, token_for

PASSWORD = "correct horse"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(app_factory):
    app = app_factory()
    with FakeServer(app, lifespan="on") as server:
        server.app = app
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        token_for(app, "officer", name="bram", display_name="Bram Peters")
        yield server


@pytest.fixture
def api(site):
    with httpx.Client(base_url=site.url, headers=auth(site.officer)) as client:
        yield client


def log_in(browser: Browser, site, name: str) -> Page:
    page = new_page(browser, viewport={"width": 1100, "height": 900})
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Gebruikersnaam").fill(name)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    expect(page.locator("#notices[data-connected]")).to_be_attached()  # the stream is open
    return page


def take_over(page: Page, site, note: str) -> None:
    """Take over, then leave a note for whoever comes next."""
    page.goto(f"{site.url}/console/duty")
    page.get_by_role("button", name="Ik neem de dienst over").click()
    expect(page.get_by_role("status")).to_contain_text("U heeft nu dienst.")
    page.get_by_label("Voor de adviseur die de dienst van u overneemt", exact=False).fill(note)
    page.get_by_role("button", name="Notitie opslaan").click()
    expect(page.get_by_role("status")).to_contain_text("De overdrachtsnotitie is opgeslagen.")
    expect(page.locator("#notices[data-connected]")).to_be_attached()


def promise(api, site, title: str) -> tuple[int, object]:
    incident = new_incident(api, site.officer, title=title)
    due = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    post_update(api, site.officer, incident["id"], next_update_due=due.isoformat())
    return incident["id"], due


def test_the_reminder_appears_without_a_reload_for_the_adviser_on_duty_alone(browser, site, api):
    lotte, bram = log_in(browser, site, "lotte"), log_in(browser, site, "bram")
    take_over(lotte, site, "Dijk Heumen in de gaten houden.")
    lotte.goto(f"{site.url}/console")  # any console page follows the notices
    expect(lotte.locator("#notices[data-connected]")).to_be_attached()

    first, due = promise(api, site, "Hoogwater Maas")
    assert remind_at(site.app, due - timedelta(minutes=9)) == [first]
    notice = lotte.locator("#notices .reminder")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("Volgend bericht beloofd om")
    expect(notice).to_contain_text("Hoogwater Maas")
    lotte.screenshot(path=str(SCREENSHOTS / "console-reminder.png"))
    notice.get_by_role("link", name="Schrijf het bericht").click()
    expect(lotte).to_have_url(f"{site.url}/console/incidents/{first}")

    # Bram takes over; the next reminder is his. His stream carried nothing before it (one
    # stream, in order), so the first reminder never reached him.
    bram.goto(f"{site.url}/console/duty")  # what Lotte leaves is there before he takes over
    expect(bram.locator(".handover")).to_have_text("Dijk Heumen in de gaten houden.")
    take_over(bram, site, "Om 16:00 bericht over de dijk beloofd.")
    expect(bram.get_by_role("heading", name="Overdracht van Lotte de Wit")).to_be_visible()
    bram.screenshot(path=str(SCREENSHOTS / "console-duty.png"), full_page=True)
    second, due = promise(api, site, "Stormschade Plasmolen")
    assert remind_at(site.app, due - timedelta(minutes=9)) == [second]
    notice = bram.locator("#notices .reminder")
    expect(notice).to_contain_text("Stormschade Plasmolen")
    expect(notice).to_have_count(1)
    expect(lotte.locator("#notices .reminder")).to_have_count(0)  # a fresh page since
