"""Facebook Page through httpx against the Graph API stand-in: render, the error table, a
correction that edits the post and comments the link, photos, and whole flows through the
dispatcher."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery.adapters import configure
from broadcast.delivery.models import Delivery
from broadcast.settings import Settings
from channels.base import ChannelContext, Media, Target, UpdateView
from channels.errors import CredentialsRevoked, NotConfigured, PermanentFailure, RetryLater
from channels.facebook import FACEBOOK_LIMIT, FacebookChannel, FacebookSettings
from channels.platform import PlatformChannel
from channels.text import utf16_len
from tests.fakes.facebook import FakeFacebook
from tests.fakes.mastodon import RateWindow
from tests.support import auth, new_incident, post_update, token_for, wait_for

PUBLIC = "https://crisis.gemeente.example"
KAART = Media(f"{PUBLIC}/media/kaart.png", "image/png", alt="Kaart van Mook")
DIJK = Media(f"{PUBLIC}/media/dijk.jpg", "image/jpeg", alt="De dijk bij Heumen")


@pytest.fixture
def facebook():
    with FakeFacebook() as fake:
        yield fake


def channel_for(fake: FakeFacebook, **changes) -> FacebookChannel:
    values = {
        "page_id": fake.state.page_id,
        "page_token": fake.state.page_token,
        "api_url": fake.url,
        "timeout_seconds": 2.0,
    } | changes
    return FacebookChannel(FacebookSettings.model_validate(values), ChannelContext(PUBLIC))


def view(body: str = "Het water stijgt.", **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "warning", "body": {"nl": body, "en": "Up."}}
    return UpdateView(**fields | {"url": f"{PUBLIC}/u/7", "incident_title": "Hoogwater"} | changes)


def target(delivery_id: int = 1, original: str | None = None) -> Target:
    return Target("page", delivery_id, per_subscriber=False, original_message_id=original)


# --- settings and render ------------------------------------------------------------------------


def test_contract_environment_variables_configure_the_channel(monkeypatch):
    context = ChannelContext(public_url=PUBLIC)
    with pytest.raises(NotConfigured, match="BROADCAST_FACEBOOK_PAGE_ID and BROADCAST_FACEBOOK"):
        configure(FacebookChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_FACEBOOK_PAGE_ID", "104857600000001")
    with pytest.raises(NotConfigured):
        configure(FacebookChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_FACEBOOK_PAGE_TOKEN", "EAA-token")
    channel = configure(FacebookChannel, Settings(), context)
    assert channel.settings.api_url == "https://graph.facebook.com/v21.0"
    monkeypatch.setenv("BROADCAST_FACEBOOK_API_URL", "http://127.0.0.1:9/v21.0")
    channel = configure(FacebookChannel, Settings(), context)
    assert channel.settings.api_url == "http://127.0.0.1:9/v21.0"
    assert channel.broadcast_targets() == ["page"] and channel.capabilities.can_edit


def test_every_post_carries_the_short_link_and_a_long_one_is_cut(facebook):
    channel = channel_for(facebook)
    short = channel.render(view(), "nl")
    assert short.text.endswith(f"\n\n{PUBLIC}/u/7") and not short.shortened
    long = channel.render(view("Zandzakken 🌊 bij de brandweer. " * 3000), "nl")
    assert long.shortened and long.text.endswith(f"{PUBLIC}/u/7")
    assert utf16_len(long.text) <= FACEBOOK_LIMIT
    preview = FacebookChannel.preview_renderer()
    assert preview.measure(long.text).limit == FACEBOOK_LIMIT


# --- sending ------------------------------------------------------------------------------------


async def test_an_update_is_a_feed_post_with_its_link(facebook):
    channel = channel_for(facebook)
    receipt = await channel.send(channel.render(view(), "nl"), target())
    post = facebook.state.posts[receipt.provider_id]
    assert receipt.delivered and receipt.provider_id.startswith(facebook.state.page_id + "_")
    assert post["link"] == f"{PUBLIC}/u/7" and "Het water stijgt." in post["message"]
    await channel.close()


async def test_one_photo_goes_with_its_caption_and_alt_text(facebook):
    channel = channel_for(facebook)
    receipt = await channel.send(channel.render(view(media=(KAART,)), "nl"), target())
    [photo] = facebook.state.photos.values()
    assert photo["url"] == KAART.url and photo["alt"] == "Kaart van Mook" and photo["published"]
    assert facebook.state.posts[receipt.provider_id]["message"].endswith(f"{PUBLIC}/u/7")
    await channel.close()


async def test_photos_are_uploaded_once_and_attached_to_one_post(facebook):
    channel = channel_for(facebook)
    message = channel.render(view(media=(KAART, DIJK)), "nl")
    facebook.state.rate_limit = RateWindow(limit=2, period=60)  # both uploads, then the limit
    with pytest.raises(RetryLater):
        await channel.send(message, target())
    facebook.state.rate_limit = RateWindow()
    receipt = await channel.send(message, target())
    assert len(facebook.state.photos) == 2  # the retry did not upload again
    post = facebook.state.posts[receipt.provider_id]
    assert post["attached"] == list(facebook.state.photos) and post["link"] is None
    assert [p["alt"] for p in facebook.state.photos.values()] == [KAART.alt, DIJK.alt]
    await channel.close()


@pytest.mark.parametrize(
    ("kind", "prefix", "comment"),
    [
        ("correction", "Gecorrigeerd: ", "Correctie: "),
        ("retraction", "Ingetrokken: ", "Ingetrokken: "),
    ],
)
async def test_a_correction_edits_the_post_and_comments_the_link(facebook, kind, prefix, comment):
    channel = channel_for(facebook)
    first = await channel.send(channel.render(view("Peil 15,10 m NAP."), "nl"), target(1))
    correction = view("Peil 14,10 m NAP.", id=8, kind=kind, supersedes=7, url=f"{PUBLIC}/u/8")
    message = channel.render(correction, "nl")
    receipt = await channel.send(message, target(2, original=first.provider_id))
    assert receipt.provider_id == first.provider_id  # the same post, edited
    post = facebook.state.posts[first.provider_id]
    assert post["message"].startswith(prefix) and "14,10" in post["message"]
    [made] = facebook.state.comments
    assert made["post"] == first.provider_id and made["message"] == f"{comment}{PUBLIC}/u/8"
    assert len(facebook.state.posts) == 1
    await channel.close()


async def test_a_retried_correction_comments_once(facebook):
    channel = channel_for(facebook)
    first = await channel.send(channel.render(view(), "nl"), target(1))
    message = channel.render(view("Anders.", id=8, kind="correction", url=f"{PUBLIC}/u/8"), "nl")
    facebook.state.rate_limit = RateWindow(limit=1, period=60)  # the edit passes, not the comment
    with pytest.raises(RetryLater):
        await channel.send(message, target(2, original=first.provider_id))
    assert len(facebook.state.edits) == 1 and facebook.state.comments == []
    facebook.state.rate_limit = RateWindow()
    receipt = await channel.send(message, target(2, original=first.provider_id))
    assert receipt.provider_id == first.provider_id and len(facebook.state.edits) == 2
    assert len(facebook.state.comments) == 1
    await channel.close()


async def test_a_correction_of_a_deleted_post_is_a_post_of_its_own(facebook):
    channel = channel_for(facebook)
    message = channel.render(view("Anders.", id=8, kind="correction"), "nl")
    receipt = await channel.send(message, target(2, original=f"{facebook.state.page_id}_404"))
    assert facebook.state.posts[receipt.provider_id]["message"].startswith("Correctie")
    await channel.close()


async def test_a_rate_limit_waits_for_the_estimated_time(facebook):
    channel = channel_for(facebook)
    facebook.state.rate_limit = RateWindow(limit=1, period=3600, used_up=True)
    facebook.state.regain_minutes = 7
    with pytest.raises(RetryLater) as raised:
        await channel.send(channel.render(view(), "nl"), target())
    assert raised.value.retry_after == 7 * 60 and "code 32" in str(raised.value)
    await channel.close()


async def test_an_expired_token_switches_the_channel_off(facebook, caplog):
    channel = channel_for(facebook)
    facebook.state.token_expired = True
    with pytest.raises(CredentialsRevoked, match="BROADCAST_FACEBOOK_PAGE_TOKEN"):
        await channel.send(channel.render(view(), "nl"), target())
    asked = len(facebook.state.requests)
    facebook.state.token_expired = False
    with pytest.raises(CredentialsRevoked):  # nothing more goes out with that token
        await channel.send(channel.render(view(), "nl"), target(2))
    assert len(facebook.state.requests) == asked and facebook.state.posts == {}
    assert "facebook channel stops sending" in caplog.text
    await channel.close()


async def test_an_invalid_parameter_fails_for_good(facebook):
    channel = channel_for(facebook, page_id="999")  # not the Page the token is for
    with pytest.raises(PermanentFailure) as raised:
        await channel.send(channel.render(view(), "nl"), target())
    assert type(raised.value) is PermanentFailure and "code 100" in str(raised.value)
    await channel.close()


async def test_meta_trouble_is_retried_later(facebook):
    channel = channel_for(facebook)
    facebook.state.faults.fail_next(1, 500)
    with pytest.raises(RetryLater, match="HTTP 500"):
        await channel.send(channel.render(view(), "nl"), target())
    await channel.close()


# --- whole flows through the dispatcher ---------------------------------------------------------


@pytest.fixture
def app(app_factory, facebook):
    built = app_factory(
        channel_classes=[PlatformChannel, FacebookChannel],
        channels={
            "facebook": {
                "page_id": facebook.state.page_id,
                "page_token": facebook.state.page_token,
                "api_url": facebook.url,
            }
        },
        max_attempts=40,
    )
    with TestClient(built) as client:
        client.officer = token_for(built, "officer")
        yield client


def facebook_rows(client) -> list[Delivery]:
    with client.app.state.db.session_scope() as session:
        query = select(Delivery).where(Delivery.channel == "facebook").order_by(Delivery.id)
        return list(session.exec(query))


def test_a_published_update_and_its_correction_reach_the_page(app, facebook):
    incident = new_incident(app, app.officer)
    original = post_update(app, app.officer, incident["id"], body="Peil 15,10 m NAP.")
    [row] = wait_for(lambda: [r for r in facebook_rows(app) if r.state == "delivered"])
    assert "15,10" in facebook.state.posts[row.provider_id]["message"]
    path = f"/api/v1/updates/{original['id']}/correct"
    answer = app.post(path, json={"body": "Peil 14,10 m NAP."}, headers=auth(app.officer))
    assert answer.status_code == 201
    wait_for(lambda: len(rows := facebook_rows(app)) == 2 and rows[1].state == "delivered")
    post = facebook.state.posts[row.provider_id]
    assert post["message"].startswith("Gecorrigeerd: ") and "14,10" in post["message"]
    [comment] = facebook.state.comments
    assert comment["post"] == row.provider_id and "/u/" in comment["message"]
    assert len(facebook.state.posts) == 1 and facebook.state.edits[0]["id"] == row.provider_id
