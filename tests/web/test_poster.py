"""Posters (issue #17 item 13): one printable A4 sheet per incident and one for the municipality,
in Dutch and English, whose QR codes open the incident page and the bot's deep link. The codes
are read back from the page as Chromium draws it (zxing-cpp), the page is printed to PDF and
must be one A4 page, and nothing is fetched from anywhere but the site itself."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import zxingcpp
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.fakes.telegram import FakeTelegram
from tests.support import (
    SENDER,
    LiveApp,
    log_in,
    new_incident,
    new_page,
    post_update,
    sms_config,
    telegram_settings,
    token_for,
)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOT = "MookCrisisBot"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
A4_POINTS = (595.28, 841.89)
SERIOUS = {"serious", "critical"}


@pytest.fixture
def telegram():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def build(app_factory, telegram, twilio):
    """The app with Telegram (a bot name for deep links) and SMS (a sending number)."""
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel
    from channels.telegram import TelegramChannel
    from channels.webhook import WebhookChannel

    def make(public_url: str = "http://127.0.0.1:8000"):
        channels = telegram_settings(telegram, bot_username=BOT) | {"sms": sms_config(twilio)}
        return app_factory(
            public_url=public_url,
            channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel, SmsChannel],
            channels=channels,
        )

    return make


@pytest.fixture
def client(build):
    from fastapi.testclient import TestClient

    with TestClient(build()) as test_client:
        test_client.officer = token_for(test_client.app, "officer", name="lotte")
        yield test_client


@pytest.fixture
def site(build):
    """The app on a real port whose public URL is that port (the QR codes name it)."""
    with LiveApp(build) as app:
        yield app


def test_an_incident_poster_names_the_village_everywhere(client):
    incident = new_incident(client, client.officer, title="Hoogwater Maas", areas=["mook"])
    post_update(client, client.officer, incident["id"], body="Zandzakken bij de brandweer.")
    page = client.get(f"/incidents/{incident['slug']}/poster")
    assert page.status_code == 200
    text = page.text
    assert "Hoogwater Maas" in text and "Zandzakken bij de brandweer." in text
    assert f"http://127.0.0.1:8000/incidents/{incident['slug']}" in text
    assert f"https://t.me/{BOT}?start=6585" in text  # the incident's one village
    assert "Geen smartphone? Sms AANMELDEN 6585 naar +31 97" in text
    assert text.count('<svg viewBox="0 0 ') == 2  # two inline QR codes, no images
    assert not re.search(r'<(img|script)\b|src="http', text)
    english = client.get(f"/incidents/{incident['slug']}/poster?lang=en").text
    assert "No smartphone? Text AANMELDEN 6585 to +31 97" in english
    assert "Latest update" in english and "Laatste bericht" in text


def test_the_municipality_poster_subscribes_to_the_whole_municipality(client):
    text = client.get("/poster").text
    assert "Crisisinformatie van de gemeente" in text
    assert f"https://t.me/{BOT}</span>" in text and "?start=" not in text
    assert "Sms AANMELDEN en uw postcode naar" in text and "(bijvoorbeeld AANMELDEN 658" in text
    assert "+31 970 100 00000" in text  # BROADCAST_TWILIO_FROM, written as people dial it
    assert SENDER == "+3197010000000"


def test_an_incident_of_several_villages_links_to_the_whole_municipality(client):
    incident = new_incident(client, client.officer, areas=["mook", "molenhoek"])
    text = client.get(f"/incidents/{incident['slug']}/poster").text
    assert f"https://t.me/{BOT}</span>" in text and "?start=" not in text
    assert "en uw postcode" in text


def test_posters_are_linked_and_an_unknown_one_is_not_found(client):
    incident = new_incident(client, client.officer)
    poster = f"/incidents/{incident['slug']}/poster"
    assert poster in client.get(f"/incidents/{incident['slug']}").text
    assert "/poster?lang=nl" in client.get("/").text
    assert client.get("/incidents/bestaat-niet/poster").status_code == 404
    assert log_in(client, "lotte").status_code == 303
    console = client.get(f"/console/incidents/{incident['id']}").text
    assert f'<a href="{poster}">Poster afdrukken</a>' in console


def decoded(page: Page) -> list[str]:
    """What a phone camera reads from each QR code as the browser draws it."""
    texts = []
    for code in page.locator("svg.qr").all():
        image = Image.open(io.BytesIO(code.screenshot())).convert("L")
        texts += [result.text for result in zxingcpp.read_barcodes(image)]
    return texts


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """The size of each page of a PDF (Chromium's: uncompressed page objects)."""
    boxes = re.findall(
        rb"/Type\s*/Page\b.*?/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", pdf, re.S
    )
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def test_the_poster_prints_on_one_a4_page_with_codes_that_scan(browser: Browser, site):
    api = site.http
    if True:
        incident = new_incident(api, site.officer, title="Hoogwater Maas", areas=["mook"])
        body = (
            "De Maas stijgt. Verwachte piek vrijdag 06:00 bij Mook: 15,10 m NAP. Zandzakken "
            "liggen bij de brandweerkazerne, Groesbeekseweg 2. Help buren die slecht ter been zijn."
        )
        post_update(
            api,
            site.officer,
            incident["id"],
            body=body,
            next_update_due="2030-01-01T12:00:00+00:00",
        )
    page = new_page(browser, viewport={"width": 1000, "height": 1300})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{site.url}/incidents/{incident['slug']}/poster")
    expect(page.get_by_role("heading", name="Hoogwater Maas")).to_be_visible()

    assert sorted(decoded(page)) == sorted(
        [f"{site.url}/incidents/{incident['slug']}", f"https://t.me/{BOT}?start=6585"]
    )
    assert all(url.startswith(site.url) for url in requested), requested
    serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in SERIOUS]
    assert serious == []

    page.screenshot(path=str(SCREENSHOTS / "public-poster.png"), full_page=True)
    page.emulate_media(media="print")
    expect(page.locator("nav.toolbar")).to_be_hidden()  # no navigation on paper
    pages = pdf_pages(page.pdf(format="A4", print_background=True, prefer_css_page_size=True))
    assert len(pages) == 1
    width, height = pages[0]
    assert abs(width - A4_POINTS[0]) < 1 and abs(height - A4_POINTS[1]) < 1

    page.emulate_media(media="screen")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Latest update", exact=False)).to_be_visible()
    assert f"{site.url}/incidents/{incident['slug']}" in decoded(page)
    page.emulate_media(media="print")
    assert len(pdf_pages(page.pdf(format="A4", prefer_css_page_size=True))) == 1
    page.context.close()


def test_the_subscribe_page_names_the_same_keyword_and_number(client):
    text = client.get("/subscribe").text
    assert (
        "Of sms AANMELDEN en uw postcode naar +31 970 100 00000 (bijvoorbeeld AANMELDEN 658" in text
    )
