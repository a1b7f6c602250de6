"""Issue 17, items 8 and 10, in a real browser: the compose form says what publishing will do
while the officer types (recipients, SMS segments and cost, the character that makes the SMS
UCS-2 and a one-click replacement), refuses a template's blanks keeping the text, and an open
public page shows the pinned instruction, and its change, without a reload."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from channels.webhook import WebhookChannel
from tests.fakes.server import FakeServer
from tests.support import (
    auth,
    new_incident,
    new_page,
    post_update,
    screenshot,
    sms_config,
    token_for,
)

PASSWORD = "correct horse"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(app_factory, settings, twilio):
    """The service with the SMS channel on the Twilio stand-in (nothing is dispatched: only
    the figures matter here) and a price per segment."""
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, SmsChannel],
        channels=settings.channels | {"sms": sms_config(twilio)},
        sms_price_per_segment=Decimal("0.075"),
        dispatch=False,
    )
    with FakeServer(app, lifespan="on") as server:
        server.officer = token_for(app, "officer", name="lotte", display_name="Lotte de Wit")
        yield server


@pytest.fixture
def api(site):
    with httpx.Client(base_url=site.url, headers=auth(site.officer)) as client:
        yield client


def log_in(browser: Browser, site) -> Page:
    page = new_page(browser, viewport={"width": 1100, "height": 900})
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Gebruikersnaam").fill("lotte")
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    return page


def test_the_preview_shows_recipients_segments_cost_and_replaces_the_ucs2_letter(
    browser, site, api
):
    for n, language in enumerate(["nl", "nl", "en"]):
        body = {"channel": "sms", "address": f"+3161234500{n}", "areas": ["mook"]}
        response = api.post("/api/v1/subscribers", json=body | {"language": language})
        assert response.status_code == 201, response.text
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    page = log_in(browser, site)
    page.goto(f"{site.url}/console/incidents/{incident['id']}")
    text = "De bewoners van Mook worden geïnformeerd over de dijk."  # with the headline: 85
    page.get_by_label("Tekst in het Nederlands").fill(text)

    publication = page.locator("#publication")
    expect(publication.locator("li[data-channel=sms]")).to_contain_text("3 ontvangers")
    expect(publication.locator("li[data-channel=platform]")).to_contain_text("1 ontvanger")
    dutch = publication.locator(".sms-language[data-language=nl]")
    expect(dutch).to_contain_text("2 sms-delen (UCS-2) × 2 ontvangers = € 0,30")
    culprit = publication.locator(".culprit[data-char='ï']").first  # Dutch (English falls back)
    expect(culprit).to_contain_text("“ï” maakt de sms UCS-2")
    expect(culprit).to_contain_text("vervang door “i”")
    expect(publication.locator(".sms-replaced").first).to_contain_text(
        "met vervanging: 1 sms-deel (GSM-7)"
    )
    expect(publication.locator(".sms-cost")).to_contain_text("Kosten sms: € 0,45")
    page.locator("#preview-heading").scroll_into_view_if_needed()
    screenshot(page, "console-compose-publication")

    culprit.get_by_role("button", name="Vervang").click()
    expect(page.get_by_label("Tekst in het Nederlands")).to_have_value(text.replace("ï", "i"))
    expect(dutch).to_contain_text("1 sms-deel (GSM-7) × 2 ontvangers = € 0,15")
    expect(publication.locator(".culprit")).to_have_count(0)
    expect(publication.locator(".sms-cost")).to_contain_text("Kosten sms: € 0,23")  # 0,225 up


def test_a_template_left_unfilled_is_refused_and_the_text_stays(browser, site, api):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    page = log_in(browser, site)
    page.goto(f"{site.url}/console/incidents/{incident['id']}")
    page.get_by_role("link", name="Weg afgesloten").click()
    field = page.get_by_label("Tekst in het Nederlands")
    typed = field.input_value().replace("[van]", "Mook")
    field.fill(typed)
    expect(page.locator("#hints .blanks")).to_contain_text(
        "Nog in te vullen (publiceren en inplannen kan pas daarna): [weg], [tot], [omleiding]"
    )
    page.get_by_role("button", name="Publiceren").click()

    alert = page.locator("#compose-refused")
    expect(alert).to_contain_text(
        "Niet gepubliceerd: vul eerst de open plekken van het sjabloon in"
    )
    expect(alert).to_contain_text("[weg], [tot], [omleiding]")
    expect(alert).to_contain_text("Uw tekst staat er nog.")
    expect(page.get_by_label("Tekst in het Nederlands")).to_have_value(typed)
    screenshot(page, "console-compose-refused")
    assert api.get(f"/api/v1/incidents/{incident['id']}").json()["updates"] == []


def test_an_open_page_shows_the_pinned_instruction_and_its_change_without_reload(
    browser, site, api
):
    incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
    post_update(api, site.officer, incident["id"], body="Het water stijgt.")
    reader = new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    reader.goto(f"{site.url}/incidents/{incident['slug']}")
    reader.evaluate("window.loadedOnce = true")
    expect(reader.locator("#last-updated")).to_contain_text("Laatst bijgewerkt:")
    expect(reader.locator(".instruction")).to_have_count(0)

    officer = log_in(browser, site)
    officer.goto(f"{site.url}/console/incidents/{incident['id']}")
    officer.get_by_text("Een instructie vastzetten").click()
    officer.get_by_label("Instructie in het Nederlands (hooguit 280 tekens)").fill(
        "Blijf binnen en sluit ramen en deuren."
    )
    officer.get_by_role("button", name="Vastzetten").click()
    expect(officer.get_by_role("status")).to_contain_text("Instructie vastgezet.")

    pinned = reader.locator(f"#instruction-{incident['id']}")
    expect(pinned).to_contain_text("Wat moet u nu doen")
    expect(pinned).to_contain_text("Blijf binnen en sluit ramen en deuren.")

    officer.get_by_text("Instructie wijzigen").click()
    officer.get_by_label("Instructie in het Nederlands (hooguit 280 tekens)").fill(
        "Ga naar de sporthal in Molenhoek."
    )
    officer.get_by_role("button", name="Wijzigen").click()
    expect(officer.get_by_role("status")).to_contain_text("Instructie gewijzigd")

    expect(pinned).to_contain_text("Ga naar de sporthal in Molenhoek.")
    expect(pinned).to_contain_text("Gewijzigd om")
    pinned.get_by_text("Vorige versie").click()
    expect(pinned.locator("del")).to_have_text("Blijf binnen en sluit ramen en deuren.")
    screenshot(reader, "public-incident-instruction")
    officer.goto(f"{site.url}/console/incidents/{incident['id']}")
    screenshot(officer, "console-instruction")
    assert reader.evaluate("window.loadedOnce") is True  # the same page, never reloaded

    officer.get_by_role("button", name="Instructie weghalen").click()
    expect(officer.get_by_role("status")).to_contain_text("Instructie weggehaald.")
    expect(reader.locator(".instruction")).to_have_count(0)
