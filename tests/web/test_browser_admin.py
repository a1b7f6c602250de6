"""The console's management pages in a real browser (issue 17, items 11 and 12): managing users on
/console/users (the token shown once, a deactivated colleague signed out of an open console),
editing the message templates and filtering the audit log. Set
``BROADCAST_SCREENSHOTS=docs/screenshots`` to save screenshots."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.fakes.server import FakeServer
from tests.support import auth, new_incident, new_page, token_for

PASSWORD = "correct horse"
SHOTS = os.environ.get("BROADCAST_SCREENSHOTS")
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(app_factory):
    app = app_factory()
    with FakeServer(app, lifespan="on") as server:
        server.app = app
        server.admin = token_for(app, "admin", name="beheer", display_name="Bea Beheer")
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        yield server


def log_in(browser: Browser, site, name: str) -> Page:
    page = new_page(browser, viewport={"width": 1200, "height": 900})
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Gebruikersnaam").fill(name)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    return page


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def test_an_admin_adds_a_colleague_and_signs_another_out(browser, site):
    colleague = log_in(browser, site, "lotte")  # an officer's console, open
    admin = log_in(browser, site, "beheer")
    admin.get_by_role("link", name="Gebruikers").click()
    expect(admin.get_by_role("heading", name="Gebruikers", exact=True)).to_be_visible()
    assert serious_violations(admin) == []

    admin.get_by_label("Gebruikersnaam").fill("anna")
    admin.get_by_label("Rol", exact=True).select_option("volunteer")
    admin.get_by_label("Wachtwoord voor de console").fill("anna-wachtwoord")
    admin.get_by_role("button", name="Gebruiker toevoegen").click()
    token = admin.locator("#token-value").inner_text()
    assert re.fullmatch(r"bc_\S+", token)
    assert httpx.get(f"{site.url}/api/v1/incidents", headers=auth(token)).status_code == 200
    shot(admin, "console-users")

    admin.get_by_role("button", name="lotte deactiveren").click()
    expect(admin.get_by_role("status")).to_have_text("De gebruiker is overal uitgelogd.")
    expect(admin.locator("#token-value")).to_have_count(0)  # the token was shown once

    colleague.reload()
    expect(colleague.get_by_label("Gebruikersnaam")).to_be_visible()  # back at the sign-in
    assert "/console/login" in colleague.url
    refused = httpx.get(f"{site.url}/api/v1/incidents", headers=auth(site.officer))
    assert refused.status_code == 401


def test_an_officer_filters_the_audit_log_and_follows_a_link(browser, site):
    with httpx.Client(base_url=site.url) as api:
        flood = new_incident(api, site.officer, title="Hoogwater Maas")
        new_incident(api, site.admin, title="Stormschade")
    page = log_in(browser, site, "lotte")
    page.get_by_role("link", name="Logboek").click()

    page.get_by_label("Wie").fill("lotte")
    page.get_by_label("Wat").select_option("incident.create")
    page.get_by_role("button", name="Filteren").click()

    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Incident aangemaakt")
    assert serious_violations(page) == []
    shot(page, "console-audit-filtered")
    with page.expect_download() as download:
        page.get_by_role("link", name="Downloaden als CSV").click()
    exported = Path(download.value.path()).read_text().splitlines()
    assert len(exported) == 2 and exported[0].startswith("id,at,actor")
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(f"{site.url}/console/incidents/{flood['id']}")
    expect(page.get_by_role("heading", name="Hoogwater Maas")).to_be_visible()


def test_an_officer_adds_a_template_and_starts_an_update_from_it(browser, site):
    with httpx.Client(base_url=site.url) as api:
        flood = new_incident(api, site.officer, title="Hoogwater Maas")
    page = log_in(browser, site, "lotte")
    page.get_by_role("link", name="Sjablonen").click()
    expect(page.get_by_role("heading", name="Berichtsjablonen")).to_be_visible()
    assert serious_violations(page) == []

    new = page.locator("form.card").last
    new.get_by_label("Sleutel (a-z, 0-9, - en _)").fill("pompen")
    new.get_by_label("Titel (Nederlands)").fill("Pompen")
    new.get_by_label("Tekst (Nederlands)").fill("De pompen bij [plaats] draaien dag en nacht.")
    new.get_by_role("button", name="Sjabloon toevoegen").click()
    expect(page.get_by_role("heading", name="Pompen")).to_be_visible()
    shot(page, "console-templates")

    page.goto(f"{site.url}/console/incidents/{flood['id']}")
    page.get_by_role("navigation", name="Sjablonen").get_by_role("link", name="Pompen").click()
    compose = page.get_by_label("Tekst in het Nederlands")
    expect(compose).to_have_value("De pompen bij [plaats] draaien dag en nacht.")
