"""Mastodon through the real Mastodon.py client against the Mastodon stand-in: render, the error
table, corrections in the open, media, and whole flows through the dispatcher."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from broadcast.delivery.adapters import configure
from broadcast.delivery.models import Delivery
from broadcast.settings import Settings
from channels.base import ChannelContext, Media, Target, UpdateView
from channels.errors import NotConfigured, PermanentFailure, RetryLater
from channels.mastodon import MastodonChannel, MastodonSettings, plain_text
from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from channels.text import mastodon_length
from channels.webhook import WebhookChannel
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.mastodon import FakeMastodon, RateWindow
from tests.fakes.server import FakeServer
from tests.fakes.twilio import FakeTwilio
from tests.support import auth, new_incident, post_update, token_for, wait_for

PUBLIC = "https://crisis.gemeente.example"
PNG = b"\x89PNG\r\n\x1a\n fake kaart"


@pytest.fixture
def mastodon():
    with FakeMastodon() as fake:
        yield fake


@pytest.fixture
def photos():
    """Where the public site would serve an update's photos."""

    async def photo(request):
        return Response(PNG, media_type="image/png")

    async def gone(request):
        return Response("not found", status_code=404)

    app = Starlette(routes=[Route("/kaart.png", photo), Route("/weg.png", gone)])
    with FakeServer(app) as server:
        yield server


def channel_for(fake: FakeMastodon, **changes) -> MastodonChannel:
    values = {"url": fake.url, "token": fake.access_token, "timeout_seconds": 2.0} | changes
    return MastodonChannel(MastodonSettings.model_validate(values), ChannelContext(PUBLIC))


def view(body: str = "Het water stijgt.", **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "warning", "body": {"nl": body, "en": "Up."}}
    return UpdateView(**fields | {"url": f"{PUBLIC}/u/7", "incident_title": "Hoogwater"} | changes)


def target(delivery_id: int = 1, original: str | None = None) -> Target:
    return Target("account", delivery_id, per_subscriber=False, original_message_id=original)


# --- settings and render ------------------------------------------------------------------------


def test_contract_environment_variables_configure_the_channel(monkeypatch):
    context = ChannelContext(public_url=PUBLIC)
    with pytest.raises(NotConfigured, match="BROADCAST_MASTODON_URL and BROADCAST_MASTODON_TOKEN"):
        configure(MastodonChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_MASTODON_URL", "http://127.0.0.1:9")
    with pytest.raises(NotConfigured):
        configure(MastodonChannel, Settings(), context)
    monkeypatch.setenv("BROADCAST_MASTODON_TOKEN", "token")
    monkeypatch.setenv("BROADCAST_MASTODON_VISIBILITY", "unlisted")
    channel = configure(MastodonChannel, Settings(), context)
    assert channel.broadcast_targets() == ["account"] and channel.settings.visibility == "unlisted"
    assert channel.capabilities.one_to_many and channel.capabilities.can_edit


def test_render_fits_500_with_links_counted_as_23(mastodon):
    channel = channel_for(mastodon)
    short = channel.render(view(), "en")
    assert short.language == "en" and "Up." in short.text and not short.shortened
    long = channel.render(view("Zandzakken liggen klaar bij de brandweer. " * 30), "nl")
    assert long.shortened and long.text.endswith(f"{PUBLIC}/u/7")
    assert mastodon_length(long.text) <= 500 < len(long.text) + 1


def test_plain_text_reads_mastodon_html_back():
    html = (
        '<p>Peil 15,10 m NAP. <a href="https://m.example/tags/maas" class="mention hashtag" '
        'rel="tag">#<span>maas</span></a><br />Meer: <a href="https://crisis.example.nl/u/7" '
        'target="_blank" rel="nofollow noopener" translate="no"><span class="invisible">'
        'https://</span><span class="">crisis.example.nl/u/7</span><span class="invisible">'
        "</span></a></p><p>Zand &amp; zakken</p>"
    )
    assert plain_text(html) == (
        "Peil 15,10 m NAP. #maas\nMeer: https://crisis.example.nl/u/7\n\nZand & zakken"
    )


# --- send: provider answer -> outcome -----------------------------------------------------------


def exhaust(fake: FakeMastodon) -> None:
    fake.state.rate_limit = RateWindow(limit=1, period=30, used_up=True)


SEND_TABLE = [
    # (case, fake setup, channel changes, body, expected)
    ("posted", None, {}, "Het water stijgt.", None),
    ("rate limited: 429", exhaust, {}, "x", RetryLater),
    ("unavailable: 503", lambda f: f.state.faults.fail_next(1, 503), {}, "x", RetryLater),
    ("proxy error: 502 html", lambda f: f.state.faults.fail_next(1, 502), {}, "x", RetryLater),
    (
        "timeout",
        lambda f: f.state.faults.hang_next(1, 2.0),
        {"timeout_seconds": 0.3},
        "x",
        RetryLater,
    ),
    ("invalid token: 401", None, {"token": "wrong"}, "x", PermanentFailure),
    ("too long: 422", None, {}, "x" * 600, PermanentFailure),
    ("unreachable", None, {"url": "http://127.0.0.1:9"}, "x", RetryLater),
]


@pytest.mark.parametrize(
    ("case", "setup", "changes", "body", "expected"), SEND_TABLE, ids=[row[0] for row in SEND_TABLE]
)
async def test_send_classifies_mastodon_answers(mastodon, case, setup, changes, body, expected):
    if setup:
        setup(mastodon)
    channel = channel_for(mastodon, **changes)
    message = channel.render(view(), "nl")
    message = replace(message, text=body)
    if expected is None:
        receipt = await channel.send(message, target())
        assert receipt.delivered and receipt.provider_id in mastodon.state.statuses
        post = mastodon.state.posts[-1]
        assert post["language"] == "nl" and post["visibility"] == "public"
        assert post["idempotency_key"] == "broadcast-1"
        return
    with pytest.raises(expected) as caught:
        await channel.send(message, target())
    assert type(caught.value) is expected
    if case.startswith("rate limited"):
        assert 20 < caught.value.retry_after <= 31  # from X-RateLimit-Reset


async def test_a_retried_send_posts_once(mastodon):
    channel = channel_for(mastodon)
    message = channel.render(view(), "nl")
    first = await channel.send(message, target(5))
    assert (await channel.send(message, target(5))).provider_id == first.provider_id
    assert len(mastodon.state.posts) == 1


@pytest.mark.parametrize(
    ("kind", "notice"),
    [("correction", "Gecorrigeerd, zie de reactie"), ("retraction", "Ingetrokken, zie de reactie")],
)
async def test_a_correction_marks_the_original_and_replies(mastodon, photos, kind, notice):
    channel = channel_for(mastodon)
    photo = Media(f"{photos.url}/kaart.png", "image/png", alt="Kaart van Mook")
    original = await channel.send(channel.render(view(media=(photo,)), "nl"), target(1))
    correction = view("Het water daalt.", id=8, kind=kind, supersedes=7, url=f"{PUBLIC}/u/8")
    reply = await channel.send(channel.render(correction, "nl"), target(2, original.provider_id))
    edited = mastodon.state.statuses[original.provider_id]
    assert edited["spoiler_text"] == notice and "Het water stijgt." in edited["content"]
    assert len(edited["media_attachments"]) == 1  # the edit kept the photo
    posted = mastodon.state.statuses[reply.provider_id]
    assert posted["in_reply_to_id"] == original.provider_id and "daalt" in posted["content"]
    await channel.send(channel.render(correction, "nl"), target(2, original.provider_id))
    assert len(mastodon.state.edits) == 1  # a retry does not edit again


async def test_a_correction_of_a_deleted_status_stands_alone(mastodon):
    channel = channel_for(mastodon)
    correction = view("Het water daalt.", id=8, kind="correction", supersedes=7)
    receipt = await channel.send(channel.render(correction, "nl"), target(2, "404404"))
    assert mastodon.state.statuses[receipt.provider_id]["in_reply_to_id"] is None


async def test_photos_are_uploaded_once_with_their_alt_text(mastodon, photos):
    mastodon.state.media_pending_polls = 1  # still processing at the first post
    channel = channel_for(mastodon)
    media = (
        Media(f"{photos.url}/kaart.png", "image/png", alt="Kaart van Mook"),
        Media(f"{photos.url}/weg.png", "image/png", alt="Verdwenen"),
    )
    message = channel.render(view(media=media), "nl")
    with pytest.raises(RetryLater, match="processing"):
        await channel.send(message, target())
    mastodon.state._pending.clear()  # processed meanwhile
    receipt = await channel.send(message, target())
    [uploaded] = mastodon.state.media.values()  # not uploaded again; the 404 photo left out
    assert uploaded["description"] == "Kaart van Mook"
    assert (
        mastodon.state.statuses[receipt.provider_id]["media_attachments"][0]["id"]
        == (uploaded["id"])
    )


# --- whole flows through the dispatcher ---------------------------------------------------------


@pytest.fixture
def app(app_factory, mastodon):
    with FakeTwilio() as twilio:
        sms = {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from": "+3197010000000",
            "api_url": twilio.url,
            "status_callback": False,
        }
        built = app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, SmsChannel, MastodonChannel],
            channels={
                "webhook": {"secret": WEBHOOK_SECRET},
                "sms": sms,
                "mastodon": {"url": mastodon.url, "token": mastodon.access_token},
            },
            max_attempts=40,
        )
        with TestClient(built) as client:
            client.officer = token_for(built, "officer")
            client.twilio = twilio
            yield client


def mastodon_rows(client) -> list[Delivery]:
    with client.app.state.db.session_scope() as session:
        query = select(Delivery).where(Delivery.channel == "mastodon").order_by(Delivery.id)
        return list(session.exec(query))


def publish(client, body: str = "Zandzakken bij de brandweer.") -> dict:
    incident = new_incident(client, client.officer)
    return post_update(client, client.officer, incident["id"], body=body)


def test_a_published_update_becomes_a_status_and_an_sms(app, mastodon):
    subscribed = app.post(
        "/api/v1/subscribers",
        headers=auth(app.officer),
        json={"channel": "sms", "address": "06 12345678", "areas": []},
    )
    assert subscribed.status_code == 201
    publish(app, {"nl": "Zandzakken bij de brandweer.", "en": "Sandbags."})
    [row] = wait_for(lambda: [r for r in mastodon_rows(app) if r.state == "delivered"])
    status = mastodon.state.statuses[row.provider_id]
    assert status["language"] == "nl" and "Zandzakken" in status["content"]
    wait_for(lambda: app.twilio.state.bodies_to("+31612345678"))


def test_a_correction_edits_the_status_and_replies(app, mastodon):
    original = publish(app, "Peil 15,10 m NAP.")
    wait_for(lambda: [r for r in mastodon_rows(app) if r.state == "delivered"])
    path = f"/api/v1/updates/{original['id']}/correct"
    assert (
        app.post(path, json={"body": "Peil 14,10 m NAP."}, headers=auth(app.officer)).status_code
        == 201
    )
    rows = wait_for(
        lambda: (
            (rows := mastodon_rows(app))
            and len(rows) == 2
            and all(r.state == "delivered" for r in rows)
            and rows
        )
    )
    first, reply = (mastodon.state.statuses[r.provider_id] for r in rows)
    assert first["spoiler_text"].startswith("Gecorrigeerd") and "15,10" in first["content"]
    assert reply["in_reply_to_id"] == first["id"] and "14,10" in reply["content"]


def test_a_rate_limited_post_is_retried_later(app, mastodon):
    mastodon.state.rate_limit = RateWindow(limit=1, period=1.5, used_up=True)
    publish(app)
    [row] = wait_for(lambda: [r for r in mastodon_rows(app) if r.state == "delivered"])
    assert row.attempts == 2 and len(mastodon.state.rate_limited) == 1
    assert len(mastodon.state.posts) == 1


def test_an_outage_loses_nothing_and_posts_once(app, mastodon):
    mastodon.state.faults.fail_next(100_000, 503)  # the instance is down ...
    publish(app)
    wait_for(lambda: len(mastodon.state.faults.injected) > 2)  # ... for several attempts
    assert mastodon.state.posts == []
    mastodon.state.faults.clear()
    wait_for(lambda: [r for r in mastodon_rows(app) if r.state == "delivered"])
    assert len(mastodon.state.posts) == 1
