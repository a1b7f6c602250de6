"""Media travel with the update: the adapters receive absolute URLs with the alt text in the
delivery's language; Telegram sends the photo (sendPhoto) with the text as its caption, Mastodon
fetches it from our site and uploads it with its alt text."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from broadcast.delivery import queue
from broadcast.fanout.views import UpdateRenderer
from channels.mastodon import MastodonChannel
from channels.platform import PlatformChannel
from channels.telegram import TelegramChannel
from channels.webhook import WebhookChannel
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import FakeServer
from tests.fakes.telegram import FakeTelegram
from tests.media.conftest import jpeg_with_gps, mp4_with_location, token_for, upload
from tests.support import auth, new_incident, post_update, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
CHANNEL = "@gemeente"


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def telegram_client(app_factory, fake):
    channels = {
        "webhook": {"secret": WEBHOOK_SECRET, "allow_private_addresses": True},
        "telegram": {"bot_token": fake.token, "api_url": fake.url, "channel_id": CHANNEL},
    }
    app = app_factory(
        channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel], channels=channels
    )
    with TestClient(app) as client:
        yield client


def test_a_published_update_with_a_photo_reaches_telegram_as_a_photo(telegram_client, fake):
    client = telegram_client
    officer = token_for(client.app, "officer", "olga")
    incident = new_incident(client, officer, title="Hoogwater Maas")
    draft = post_update(
        client, officer, incident["id"], body="Kerkstraat staat onder water.", draft=True
    )
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()
    assert not fake.state.sent  # nothing goes out before it is published

    response = client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    assert response.json()["state"] == "published"

    sent = wait_for(lambda: [m for m in fake.state.sent if m.chat_id == CHANNEL])
    assert [m.method for m in sent] == ["sendPhoto"]
    assert sent[0].params["photo"] == item["url"]
    assert "Kerkstraat staat onder water." in sent[0].text  # the caption
    # The URL the provider fetches is public now, and it is the cleaned file.
    public = client.get("/media/" + item["url"].rsplit("/", 1)[1])
    assert public.status_code == 200 and b"Canon" not in public.content


def test_an_update_without_media_is_a_text_message(telegram_client, fake):
    client = telegram_client
    officer = token_for(client.app, "officer", "olga")
    post_update(client, officer, new_incident(client, officer)["id"], body="Het water zakt.")

    sent = wait_for(lambda: [m for m in fake.state.sent if m.chat_id == CHANNEL])
    assert [m.method for m in sent] == ["sendMessage"]


def test_adapters_get_absolute_urls_and_the_alt_text_in_the_delivery_language(app_factory):
    with TestClient(app_factory(dispatch=False, public_url="https://crisis.example.nl/")) as client:
        officer = token_for(client.app, "officer", "olga")
        for address, language in (("http://127.0.0.1:9/nl", "nl"), ("http://127.0.0.1:9/en", "en")):
            response = client.post(
                "/api/v1/subscribers",
                headers=auth(officer),
                json={"channel": "webhook", "address": address, "areas": [], "language": language},
            )
            assert response.status_code == 201, response.text
        draft = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        photo = upload(
            client,
            officer,
            draft["id"],
            jpeg_with_gps(),
            alt="Straat onder water",
            alt_en="Street under water",
        ).json()
        video = upload(
            client,
            officer,
            draft["id"],
            mp4_with_location(),
            alt="Filmpje dijk",
            content_type="video/mp4",
        ).json()
        client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))

        with client.app.state.db.session_scope() as session:
            jobs = queue.claim(
                session,
                "webhook",
                limit=10,
                lease_seconds=30,
                renderer=UpdateRenderer(client.app.state.settings),
            )

    by_language = {job.language: job.update.media for job in jobs}
    assert set(by_language) == {"nl", "en"}
    name = photo["url"].rsplit("/", 1)[1]
    assert by_language["nl"][0].url == f"https://crisis.example.nl/media/{name}"
    assert [(m.content_type, m.alt) for m in by_language["nl"]] == [
        ("image/jpeg", "Straat onder water"),
        ("video/mp4", "Filmpje dijk"),
    ]
    assert [(m.content_type, m.alt) for m in by_language["en"]] == [
        ("image/jpeg", "Street under water"),
        ("video/mp4", "Filmpje dijk"),
    ]  # no English: Dutch
    assert video["url"].endswith(".mp4")


def test_mastodon_fetches_the_cleaned_photo_from_our_site_and_uploads_it_with_its_alt(
    app_factory,
):
    """Over real HTTP: the adapter downloads /media/<name> from the public URL, as Mastodon's
    own servers would, and uploads it with the alt text as its description."""
    with FakeMastodon() as mastodon:
        channels = {
            "webhook": {"secret": WEBHOOK_SECRET, "allow_private_addresses": True},
            "mastodon": {"url": mastodon.url, "token": mastodon.access_token},
        }
        app = app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, MastodonChannel], channels=channels
        )
        with FakeServer(app, lifespan="on") as site, httpx.Client(base_url=site.url) as http:
            app.state.settings.public_url = site.url  # known only once the server listens
            officer = token_for(app, "officer", "olga")
            draft = post_update(
                http,
                officer,
                new_incident(http, officer)["id"],
                draft=True,
                body="Kerkstraat onder water.",
            )
            item = upload(http, officer, draft["id"], jpeg_with_gps(), alt="Straat onder water")
            assert item.status_code == 201, item.text
            http.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))

            [status] = wait_for(lambda: list(mastodon.state.statuses.values()))
            [uploaded] = mastodon.state.media.values()
            stored = app.state.settings.media_dir / item.json()["url"].rsplit("/", 1)[1]
            assert uploaded["description"] == "Straat onder water"
            assert uploaded["meta"]["original"]["size_bytes"] == stored.stat().st_size
            assert [m["id"] for m in status["media_attachments"]] == [uploaded["id"]]
