"""The adviser's day in a real browser (issue #17): nothing typed is lost, the console warns
before it tries what cannot work, and open pages follow what officers change."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from broadcast.questions import service as questions
from tests.fakes.server import FakeServer
from tests.support import auth, chromium, new_incident, new_page, token_for

PASSWORD = "correct horse"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def site(app_factory):
    app = app_factory()
    with FakeServer(app, lifespan="on") as server:
        server.app = app
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        yield server


@pytest.fixture
def api(site):
    import httpx

    with httpx.Client(base_url=site.url, headers=auth(site.officer)) as client:
        yield client


def log_in(browser: Browser, site, name: str = "lotte") -> Page:
    page = new_page(browser, viewport={"width": 1100, "height": 900})
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Gebruikersnaam").fill(name)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    return page


def ask(site, text: str, *, channel: str, address: str | None, incident_id: int) -> int:
    with site.app.state.db.session_scope() as session:
        question = questions.receive(
            session, channel=channel, text=text, address=address, incident_id=incident_id
        )
        assert question.id is not None
        return question.id


def test_a_refused_private_answer_keeps_the_text_and_offers_the_public_answer(browser, site, api):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    assert "sms" not in site.app.state.channels  # no Twilio credentials: the channel is off
    question = ask(
        site,
        "Is de Kerkstraat open?",
        channel="sms",
        address="+31612345678",
        incident_id=incident["id"],
    )
    page = log_in(browser, site)
    page.goto(f"{site.url}/console/questions")
    card = page.locator(f"#question-{question}")
    expect(card.locator(f"#cannot-reply-{question}")).to_contain_text(
        "Een persoonlijk antwoord kan niet worden verstuurd: het kanaal sms staat nu uit."
    )
    public = card.get_by_label("In plaats daarvan publiceren als vraag en antwoord", exact=False)
    expect(public).to_be_checked()

    public.uncheck()  # the adviser insists on a private answer
    card.get_by_label("Uw antwoord").fill("Nee, de Kerkstraat is dicht tot morgen 12:00.")
    card.get_by_role("button", name="Antwoord versturen").click()

    card = page.locator(f"#question-{question}")
    expect(card.get_by_role("alert")).to_contain_text("Niet verstuurd: Vraag")
    expect(card.get_by_role("alert")).to_contain_text("Uw tekst staat er nog.")
    expect(card.get_by_label("Uw antwoord")).to_have_value(
        "Nee, de Kerkstraat is dicht tot morgen 12:00."
    )
    assert api.get("/api/v1/questions").json()[0]["state"] == "new"

    public = card.get_by_label("In plaats daarvan publiceren als vraag en antwoord", exact=False)
    expect(public).to_be_checked()
    card.get_by_role("button", name="Antwoord versturen").click()
    expect(page.get_by_role("status")).to_contain_text("Antwoord gepubliceerd op de tijdlijn.")
    assert api.get("/api/v1/questions").json()[0]["state"] == "answered"
    timeline = api.get(f"/api/v1/incidents/{incident['id']}").json()["updates"]
    assert any("Kerkstraat is dicht" in u["body"]["nl"] for u in timeline)
