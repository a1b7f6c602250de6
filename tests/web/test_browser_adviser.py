"""The adviser's day in a real browser (issue #17): nothing typed is lost, the console warns
before it tries what cannot work, and open pages follow what officers change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from broadcast.incidents.models import Incident
from broadcast.questions import service as questions
from tests.fakes.server import FakeServer
from tests.support import auth, new_incident, new_page, token_for

PASSWORD = "correct horse"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(app_factory):
    app = app_factory()
    with FakeServer(app, lifespan="on") as server:
        server.app = app
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        yield server


@pytest.fixture
def api(site):
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


def test_an_open_page_follows_corrections_retractions_and_the_promise(browser, app_factory):
    app = app_factory(overdue_check_seconds=1)
    with FakeServer(app, lifespan="on") as server:
        officer = token_for(app, "officer", name="lotte")
        with httpx.Client(base_url=server.url, headers=auth(officer)) as api:
            incident = new_incident(api, officer, title="Hoogwater Maas", areas=["mook"])
            soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            first = api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={"body": "Het water staat op 3 meter.", "next_update_due": soon},
            ).json()
            second = api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={"body": "De Kerkstraat is dicht.", "next_update_due": soon},
            ).json()
            reader = new_page(browser, viewport={"width": 390, "height": 844})
            reader.goto(f"{server.url}/incidents/{incident['slug']}")
            reader.evaluate("window.loadedOnce = true")
            expect(reader.locator("#next-update")).to_contain_text("Volgende update verwacht om")

            correction = api.post(
                f"/api/v1/updates/{first['id']}/correct",
                json={"body": "Het water staat op 2 meter."},
            )
            assert correction.status_code == 201, correction.text
            original = reader.locator(f"#update-{first['id']}")
            expect(original.locator("del.body")).to_have_text("Het water staat op 3 meter.")
            expect(original).to_have_class(re.compile(r"\bsuperseded\b"))
            expect(reader.locator(f"#update-{correction.json()['id']}")).to_contain_text(
                "Het water staat op 2 meter."
            )

            retraction = api.post(
                f"/api/v1/updates/{second['id']}/retract", json={"reason": "Verkeerde straat."}
            )
            assert retraction.status_code == 201, retraction.text
            retracted = reader.locator(f"#update-{second['id']}")
            expect(retracted).to_have_class(re.compile(r"\bretracted\b"))
            expect(retracted.locator(".notice")).to_contain_text("Verkeerde straat.")

            later = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).isoformat()
            api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={"body": "Nieuwe belofte.", "next_update_due": later},
            )
            expect(reader.locator("#next-update")).to_contain_text("13:00")  # Amsterdam time

            # The promise breaks: the scheduler's reminder tells the open page too.
            with app.state.db.session_scope() as session:
                row = session.get(Incident, incident["id"])
                assert row is not None
                row.next_update_due = datetime.now(UTC) - timedelta(minutes=1)
                session.add(row)
            expect(reader.locator("#next-update .overdue")).to_contain_text(
                "later dan beloofd", timeout=90_000
            )
            assert reader.evaluate("window.loadedOnce") is True  # never reloaded
