"""The pages in a real browser: Debian's headless Chromium driven by Playwright, against the
whole service (API, console, public site, dispatcher) served over HTTP on 127.0.0.1.

Set ``BROADCAST_SCREENSHOTS=docs/screenshots`` to save the screenshots shown in the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.fakes.server import FakeServer
from tests.media.conftest import jpeg_with_gps
from tests.support import (
    auth,
    code_sent_to,
    new_incident,
    new_page,
    post_update,
    sms_config,
    token_for,
)

PASSWORD = "correct horse"
SERIOUS = {"serious", "critical"}
SHOTS = os.environ.get("BROADCAST_SCREENSHOTS")
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(app_factory):
    """The service on a free port, with an officer, a volunteer and an incident."""
    app = app_factory()
    with FakeServer(app, lifespan="on") as server:
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        token_for(app, "volunteer", name="anna", display_name="Anna de Vries")
        yield server


@pytest.fixture
def api(site):
    import httpx

    with httpx.Client(base_url=site.url, headers=auth(site.officer)) as client:
        yield client


def log_in(browser: Browser, site, name: str) -> Page:
    page = new_page(browser, viewport={"width": 1100, "height": 900})
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Gebruikersnaam").fill(name)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    return page


def resident(browser: Browser, url: str) -> Page:
    page = new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(url)
    return page


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} – {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def test_an_officer_publishes_and_an_open_resident_page_shows_it_without_reload(browser, site, api):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    reader = resident(browser, f"{site.url}/incidents/{incident['slug']}")
    reader.evaluate("window.loadedOnce = true")

    officer = log_in(browser, site, "lotte")
    officer.get_by_role("link", name="Hoogwater Maas").click()
    officer.get_by_label("Tekst in het Nederlands").fill(
        "Teneinde de dijk te sparen is de Kerkstraat in Mook dicht. Rijd om via de N271."
    )
    preview = officer.locator("#preview")
    expect(preview.locator("[data-channel=sms]")).to_contain_text("1 / 3 sms-delen")
    expect(preview.locator("[data-channel=telegram]")).to_contain_text("Kerkstraat in Mook")
    expect(officer.locator("#hints")).to_contain_text("teneinde")
    officer.locator("svg.area-map path[data-area=mook]").click()
    expect(officer.locator("input[name=areas][value=mook]")).to_be_checked()
    shot(officer, "console-compose")
    officer.get_by_role("button", name="Publiceren").click()
    expect(officer.get_by_role("status")).to_contain_text("Gepubliceerd.")

    card = reader.locator("#timeline .update").first
    expect(card).to_contain_text("de Kerkstraat in Mook dicht", timeout=10_000)
    expect(reader.locator("#timeline .empty")).to_have_count(0)
    assert reader.evaluate("window.loadedOnce") is True  # the same page, not a reload
    shot(reader, "public-incident-mobile")


def test_a_volunteer_proposes_with_a_photo_an_officer_approves_and_credits_them(
    browser, site, api, tmp_path
):
    incident = new_incident(api, site.officer, title="Hoogwater Maas")
    volunteer = log_in(browser, site, "anna")
    volunteer.goto(f"{site.url}/console/incidents/{incident['id']}")
    volunteer.get_by_label("Tekst in het Nederlands").fill("Bij de kerk liggen zandzakken klaar.")
    volunteer.get_by_role("button", name="Ter goedkeuring versturen").click()
    expect(volunteer.get_by_role("status")).to_contain_text("Voorstel verstuurd")
    photo = tmp_path / "kade.jpg"
    photo.write_bytes(jpeg_with_gps())
    volunteer.get_by_text("Foto of korte video toevoegen").click()
    volunteer.get_by_label("Foto (JPEG, PNG, WebP) of video (MP4, WebM)").set_input_files(photo)
    volunteer.get_by_label("Wat is er te zien?").fill("Zandzakken bij de kerk")
    volunteer.get_by_role("button", name="Toevoegen").click()
    expect(volunteer.get_by_role("status")).to_contain_text("Foto toegevoegd")
    volunteer.goto(f"{site.url}/console")
    expect(volunteer.locator("table")).to_contain_text("Wacht op goedkeuring")

    officer = log_in(browser, site, "lotte")
    officer.get_by_role("link", name=re.compile("Bij de kerk liggen")).click()
    expect(officer.get_by_role("img", name="Zandzakken bij de kerk")).to_be_visible()
    shot(officer, "console-approval")
    officer.get_by_role("button", name="Goedkeuren en publiceren").click()
    expect(officer.get_by_role("status")).to_contain_text("Goedgekeurd")

    volunteer.reload()
    expect(volunteer.locator("table")).to_contain_text("vermeld als Anna de Vries")
    public = resident(browser, f"{site.url}/incidents/{incident['slug']}")
    expect(public.locator(".credit")).to_contain_text("Met dank aan Anna de Vries")
    expect(public.get_by_role("img", name="Zandzakken bij de kerk")).to_be_visible()

    volunteer.goto(f"{site.url}/console")
    volunteer.get_by_role("link", name="Doorstuurset").first.click()
    expect(volunteer.locator("#text-whatsapp")).to_contain_text("Bij de kerk liggen zandzakken")
    shot(volunteer, "console-relay-kit")


def test_a_resident_asks_on_the_page_and_the_public_answer_appears_there(browser, site, api):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    reader = resident(browser, f"{site.url}/incidents/{incident['slug']}")
    reader.get_by_label("Uw vraag").fill("Mag ik mijn boot nog aan de Maas laten liggen?")
    reader.get_by_role("button", name="Vraag versturen").click()
    expect(reader.get_by_role("status")).to_contain_text("Bedankt, uw vraag is bij")
    assert serious_violations(reader) == []

    officer = log_in(browser, site, "lotte")
    officer.goto(f"{site.url}/console/questions")
    question = officer.locator("article.question").first
    expect(question).to_contain_text("Mag ik mijn boot nog aan de Maas laten liggen?")
    expect(question).to_contain_text("Gesteld op de website")
    question.get_by_label("Uw antwoord").fill("Nee, haal boten vóór 18:00 uit het water.")
    question.get_by_role("button", name="Antwoord versturen").click()

    answer = reader.locator("#timeline .update").first
    expect(answer).to_contain_text("haal boten vóór 18:00 uit het water", timeout=10_000)
    expect(answer).to_contain_text("Mag ik mijn boot nog aan de Maas laten liggen?")


def test_the_main_pages_have_no_serious_accessibility_violations(browser, site, api):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    original = post_update(
        api,
        site.officer,
        incident["id"],
        body="De N271 is dicht.",
        next_update_due="2030-01-01T12:00:00+01:00",
    )
    api.post(f"/api/v1/updates/{original['id']}/correct", json={"body": "De N271 is open."})
    officer = log_in(browser, site, "lotte")
    pages = {
        "public-status": f"{site.url}/",
        "public-incident": f"{site.url}/incidents/{incident['slug']}",
        "public-incident-en": f"{site.url}/incidents/{incident['slug']}?lang=en",
        "console-overview": f"{site.url}/console",
        "console-incident": f"{site.url}/console/incidents/{incident['id']}",
        "console-questions": f"{site.url}/console/questions",
        "console-deliveries": f"{site.url}/console/updates/{original['id']}",
        "console-audit": f"{site.url}/console/audit",
        "console-duty": f"{site.url}/console/duty",
    }
    found = {}
    for name, url in pages.items():
        page = officer if name.startswith("console") else resident(browser, url)
        page.goto(url)
        shot(page, name)
        if violations := serious_violations(page):
            found[name] = violations
    login = new_page(browser)
    login.goto(f"{site.url}/console/login")
    found |= {"console-login": v} if (v := serious_violations(login)) else {}
    assert found == {}


def test_a_resident_subscribes_by_sms_with_the_code_they_receive(browser, app_factory):
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel
    from tests.conftest import WEBHOOK_SECRET
    from tests.fakes.twilio import FakeTwilio

    with FakeTwilio() as twilio:
        app = app_factory(
            channel_classes=[PlatformChannel, SmsChannel],
            channels={"webhook": {"secret": WEBHOOK_SECRET}, "sms": sms_config(twilio)},
        )
        with FakeServer(app, lifespan="on") as server:
            page = resident(browser, f"{server.url}/subscribe")
            page.get_by_label("Mobiel nummer").fill("06 12345678")
            page.get_by_label("Postcode (4 cijfers)").fill("6585")
            page.get_by_role("button", name="Stuur mij een code").click()
            expect(page.get_by_role("status")).to_contain_text("We hebben een code per sms")
            code = code_sent_to(twilio, "+31612345678")
            page.get_by_label("Code uit de sms").fill("000000" if code != "000000" else "111111")
            page.get_by_role("button", name="Bevestigen").click()
            expect(page.get_by_role("alert")).to_contain_text("verkeerde code")
            page.get_by_label("Code uit de sms").fill(code)
            page.get_by_role("button", name="Bevestigen").click()
            expect(page.get_by_role("status")).to_contain_text("U bent aangemeld")
            shot(page, "public-subscribe-sms")
            assert serious_violations(page) == []
            with app.state.db.session_scope() as session:
                from sqlmodel import select

                from broadcast.subscribers.models import Subscriber

                [subscriber] = session.exec(select(Subscriber)).all()
                assert (subscriber.channel, subscriber.address) == ("sms", "+31612345678")
