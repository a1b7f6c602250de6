"""The provider stand-ins, driven through the real client libraries over real HTTP."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import requests
import telegram
from mastodon import Mastodon, MastodonAPIError, MastodonRatelimitError
from mastodon.errors import MastodonInternalServerError, MastodonUnauthorizedError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TimedOut
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.fakes.mastodon import FakeMastodon, RateWindow, countable_length
from tests.fakes.server import FakeServer, SlidingWindow
from tests.fakes.telegram import FakeTelegram, parse_html
from tests.fakes.twilio import FakeTwilio, post_inbound_sms, segments, twilio_client

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=f"{tg.url}/bot") as client:
        yield client


@pytest.fixture
def tw() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def masto() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


@pytest.fixture
def api(masto: FakeMastodon) -> Mastodon:
    return Mastodon(
        access_token=masto.access_token,
        api_base_url=masto.url,
        version_check_mode="created",
        ratelimit_method="throw",
        request_timeout=2,
    )


@pytest.fixture
def hook_receiver() -> Iterator[tuple[FakeServer, list[dict[str, Any]]]]:
    """A local webhook endpoint that records every form POST it gets."""
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        form = await request.form()
        received.append(
            {
                "url": str(request.url),
                "params": dict(form),
                "signature": request.headers.get("x-twilio-signature"),
            }
        )
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    with FakeServer(app) as server:
        yield server, received


def seconds(retry_after: int | dtm.timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, dtm.timedelta) else retry_after


# --- server plumbing ------------------------------------------------------------------------


def test_server_binds_loopback_and_stops() -> None:
    server = FakeServer(Starlette()).start()
    assert server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{server.url}/nothing").status_code == 404
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/nothing", timeout=0.5)


def test_sliding_window_slides() -> None:
    window = SlidingWindow(2, 1.0)
    window.record(now=0.0)
    window.record(now=0.5)
    assert window.wait_time(now=0.9) == pytest.approx(0.1)
    assert window.wait_time(now=1.0) == 0.0


# --- Telegram -------------------------------------------------------------------------------


async def test_telegram_send_photo_edit_reply(tg: FakeTelegram, bot: telegram.Bot) -> None:
    first = await bot.send_message(
        42, "<b>Let op</b> &amp; <a href='https://nl.nl'>info</a>", parse_mode="HTML"
    )
    assert (first.message_id, first.chat.id, first.text) == (1, 42, "Let op & info")
    assert [e.type for e in first.entities] == ["bold", "text_link"]
    photo = await bot.send_photo(
        7, b"\x89PNG fake", caption="Kaart <i>gebied</i>", parse_mode="HTML"
    )
    assert photo.caption == "Kaart gebied" and photo.photo[-1].width == 800
    edited = await bot.edit_message_text("<b>Update</b>", 42, first.message_id, parse_mode="HTML")
    assert edited.text == "Update" and edited.edit_date is not None
    tg.state.chat_limit.reset()
    reply = await bot.send_message(42, "Vervolg", reply_to_message_id=first.message_id)
    assert reply.message_id == 2 and reply.reply_to_message.message_id == 1
    assert [m.reply_to_message_id for m in tg.state.sent] == [None, None, 1]
    assert tg.state.sent[0].parse_mode == "HTML" and tg.state.edits[0].text == "<b>Update</b>"
    assert await bot.edit_message_caption(7, photo.message_id, caption="Nieuw")


async def test_telegram_chat_errors(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.state.blocked_chats.add(42)
    tg.state.unknown_chats.add(43)
    tg.state.migrated_chats[-5] = -1001234567890
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(42, "x")
    with pytest.raises(BadRequest, match="[Cc]hat not found"):
        await bot.send_message(43, "x")
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-5, "x")
    assert migrated.value.new_chat_id == -1001234567890
    assert tg.state.sent == []


@pytest.mark.parametrize(
    "text, mode, error",
    [
        ("x" * 4097, None, "too long"),
        ("é" * 4096, None, None),  # UTF-16 units, not bytes
        ("😀" * 2049, None, "too long"),  # astral characters count twice
        ("<b>" + "x" * 4096 + "</b>", "HTML", None),  # counted after entity parsing
        ("<b>open", "HTML", "find end tag"),
        ("<div>x</div>", "HTML", 'unsupported start tag "div"'),
        ("<b>x</i>", "HTML", "unmatched end tag"),
        ("<span>x</span>", "HTML", "tg-spoiler"),
    ],
)
async def test_telegram_text_validation(
    bot: telegram.Bot, tg: FakeTelegram, text: str, mode: str | None, error: str | None
) -> None:
    tg.state.chat_limit = SlidingWindow(100, 1.0)
    if error is None:
        assert (await bot.send_message(1, text, parse_mode=mode)).message_id == 1
        return
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_message(1, text, parse_mode=mode)


def test_telegram_html_entities_use_utf16_offsets() -> None:
    plain, entities = parse_html("😀 <tg-spoiler>geheim</tg-spoiler> &#x41;")
    assert plain == "😀 geheim A"
    assert entities == [{"offset": 3, "length": 6, "type": "spoiler"}]


async def test_telegram_caption_limit(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)caption is too long"):
        await bot.send_photo(1, b"img", caption="x" * 1025)


@pytest.mark.filterwarnings("ignore:.*retry_after.*timedelta")  # PTB's int -> timedelta move
async def test_telegram_rate_limits(tg: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(1, "a")
    with pytest.raises(RetryAfter) as hit:
        await bot.send_message(1, "b")
    assert seconds(hit.value.retry_after) == 1
    tg.state.global_limit = SlidingWindow(1, 60.0)
    await bot.send_message(2, "c")
    with pytest.raises(RetryAfter):
        await bot.send_message(3, "d")
    hits = [(h["chat_id"], h["scope"]) for h in tg.state.rate_limited]
    assert hits == [(1, "chat"), (3, "global")]
    raw = httpx.post(f"{tg.url}/bot{tg.token}/sendMessage", json={"chat_id": 3, "text": "e"})
    retry = raw.json()["parameters"]["retry_after"]
    assert raw.status_code == 429 and raw.headers["Retry-After"] == str(retry) and retry > 50
    assert raw.json() == {
        "ok": False,
        "error_code": 429,
        "parameters": {"retry_after": retry},
        "description": f"Too Many Requests: retry after {retry}",
    }
    assert [m.text for m in tg.state.sent] == ["a", "c"]


async def test_telegram_faults_and_timeouts(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.state.faults.fail_next(1, 502)
    with pytest.raises(telegram.error.NetworkError, match="Bad Gateway"):
        await bot.send_message(1, "x")
    tg.state.faults.hang_next(1, seconds=3.0)
    with pytest.raises(TimedOut):
        await bot.send_message(1, "y", read_timeout=0.2)
    with pytest.raises(InvalidToken):
        await telegram.Bot(
            "999:AAwrongwrongwrongwrongwrongwrongwrong", base_url=f"{tg.url}/bot"
        ).get_me()


async def test_telegram_webhook_and_callback(tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)https url must be provided"):
        await bot.set_webhook("http://127.0.0.1/hook")
    assert await bot.set_webhook("https://alerts.example/hook", secret_token="s3cret")
    assert (await bot.get_webhook_info()).url == "https://alerts.example/hook"
    assert tg.state.webhook["secret_token"] == "s3cret"
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.answer_callback_query("cbq-1", text="Dank u")
    assert tg.state.callback_answers[0]["text"] == "Dank u"


# --- Twilio ---------------------------------------------------------------------------------


def test_twilio_create_message(tw: FakeTwilio) -> None:
    client = twilio_client(tw)
    sms = client.messages.create(to="+31612345678", from_="+3197010000000", body="Evacueer nu")
    assert sms.sid.startswith("SM") and len(sms.sid) == 34
    assert (sms.status, sms.num_segments, sms.direction) == ("queued", "1", "outbound-api")
    assert sms.date_created is not None and sms.uri.endswith(f"/Messages/{sms.sid}.json")
    wa = client.messages.create(
        to="whatsapp:+31612345678", from_="whatsapp:+3197010000000", body="ł" * 71
    )
    assert wa.to == "whatsapp:+31612345678" and wa.num_segments == "2"
    service = client.messages.create(
        to="+31612345679", messaging_service_sid="MG" + "0" * 32, body="x"
    )
    assert service.status == "accepted"
    assert client.messages(sms.sid).fetch().body == "Evacueer nu"
    assert tw.state.bodies_to("+31612345678") == ["Evacueer nu"]


def test_twilio_segments() -> None:
    assert [segments("a" * 160), segments("a" * 161), segments("€" * 80), segments("é" * 160)] == [
        1,
        2,
        1,
        1,
    ]
    assert [segments("ł" * 70), segments("ł" * 71), segments("😀" * 35)] == [1, 2, 1]


@pytest.mark.parametrize(
    "to, setup, code, status",
    [
        ("0612345678", None, 21211, 400),
        ("+31612345678", "unsubscribed", 21610, 400),
        ("+79161234567", "region", 21408, 400),
    ],
)
def test_twilio_errors(tw: FakeTwilio, to: str, setup: str | None, code: int, status: int) -> None:
    tw.state.unsubscribed.add("+31612345678")
    tw.state.blocked_prefixes.add("+7")
    with pytest.raises(TwilioRestException) as err:
        twilio_client(tw).messages.create(to=to, from_="+3197010000000", body="x")
    assert (err.value.code, err.value.status) == (code, status)
    assert tw.state.messages == []


def test_twilio_body_limit_auth_and_rate_limit(tw: FakeTwilio) -> None:
    client = twilio_client(tw)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+31612345678", from_="+3197010000000", body="x" * 1601)
    assert err.value.code == 21617
    tw.state.rate_limit = SlidingWindow(2, 10.0)
    for _ in range(2):
        client.messages.create(to="+31612345678", from_="+3197010000000", body="x")
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+31612345678", from_="+3197010000000", body="x")
    assert (err.value.code, err.value.status) == (20429, 429) and len(tw.state.rate_limited) == 1
    tw.state.auth_token = "other"
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+31612345678", from_="+3197010000000", body="x")
    assert (err.value.code, err.value.status) == (20003, 401)


def test_twilio_faults(tw: FakeTwilio) -> None:
    tw.state.faults.fail_next(1, 503)
    with pytest.raises(TwilioRestException) as err:
        twilio_client(tw).messages.create(to="+31612345678", from_="+3197010000000", body="x")
    assert err.value.status == 503
    tw.state.faults.hang_next(1, seconds=3.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        twilio_client(tw, timeout=0.2).messages.create(to="+31612345678", from_="+31970", body="x")


def test_twilio_status_callbacks_are_signed(tw: FakeTwilio, hook_receiver: Any) -> None:
    server, received = hook_receiver
    tw.state.delivery_failures["+31600000001"] = ("undelivered", 30003)
    client = twilio_client(tw)
    url = f"{server.url}/twilio/status?tenant=1"
    ok = client.messages.create(
        to="+31612345678", from_="+3197010000000", body="x", status_callback=url
    )
    client.messages.create(to="+31600000001", from_="+3197010000000", body="x", status_callback=url)
    callbacks = tw.state.wait_for_callbacks(4)
    assert len(callbacks) == 4 and all(c.status_code == 204 for c in callbacks)
    validator = RequestValidator(tw.auth_token)
    assert all(validator.validate(r["url"], r["params"], r["signature"]) for r in received)
    mine = [r["params"] for r in received if r["params"]["MessageSid"] == ok.sid]
    assert [p["MessageStatus"] for p in mine] == ["sent", "delivered"]
    assert set(mine[1]) >= {"SmsSid", "SmsStatus", "To", "AccountSid", "From", "ApiVersion"}
    failed = [r["params"] for r in received if r["params"]["To"] == "+31600000001"]
    assert failed[-1]["MessageStatus"] == "undelivered" and failed[-1]["ErrorCode"] == "30003"


def test_twilio_inbound_sms_webhook(tw: FakeTwilio, hook_receiver: Any) -> None:
    server, received = hook_receiver
    answer = post_inbound_sms(f"{server.url}/twilio/inbound", "+31612345678", "STOP", tw.auth_token)
    assert answer.status_code == 204
    params, signature = received[0]["params"], received[0]["signature"]
    assert params["Body"] == "STOP" and params["SmsStatus"] == "received"
    assert params["FromCountry"] == "NL"
    assert RequestValidator(tw.auth_token).validate(received[0]["url"], params, signature)


# --- Mastodon -------------------------------------------------------------------------------


def test_mastodon_post_edit_media(masto: FakeMastodon, api: Mastodon) -> None:
    media = api.media_post(
        b"\x89PNG fake",
        mime_type="image/png",
        file_name="kaart.png",
        description="Kaart van het gebied",
    )
    assert media.url is None and api.media(media.id).url.endswith("kaart.png")
    status = api.status_post(
        "Evacuatie <nu>",
        language="nl",
        visibility="unlisted",
        media_ids=[media.id],
        idempotency_key="alert-1",
    )
    assert status.content == "<p>Evacuatie &lt;nu&gt;</p>" and status.media_attachments
    again = api.status_post("Evacuatie <nu>", idempotency_key="alert-1")
    assert again.id == status.id and len(masto.state.posts) == 1
    reply = api.status_post("Update", in_reply_to_id=status.id)
    assert reply.in_reply_to_id == status.id
    edited = api.status_update(status.id, "Evacuatie voorbij")
    assert edited.edited_at is not None and api.status(status.id).content.startswith("<p>Evac")
    assert masto.state.posts[0]["media_ids[]"] == [str(media.id)]
    assert masto.state.media[media.id]["description"] == "Kaart van het gebied"
    assert api.account_verify_credentials().username == "gemeente"


def test_mastodon_media_still_processing(masto: FakeMastodon, api: Mastodon) -> None:
    masto.state.media_pending_polls = 1
    media = api.media_post(b"x", mime_type="image/png", file_name="a.png")
    with pytest.raises(MastodonAPIError, match="finished processing"):
        api.status_post("x", media_ids=[media.id])
    assert api.media(media.id).url is None  # 206 while processing
    assert api.status_post("x", media_ids=[media.id]).media_attachments[0].url


def test_mastodon_length_limit(masto: FakeMastodon, api: Mastodon) -> None:
    url = "https://www.example.nl/" + "pad/" * 40
    assert countable_length("x " + url) == 25
    api.status_post("x" * 476 + " " + url)  # 500 with the URL counted as 23
    with pytest.raises(MastodonAPIError) as err:
        api.status_post("x" * 501)
    assert err.value.args[1] == 422
    assert "character limit of 500 exceeded" in str(err.value)
    assert countable_length("👩‍👩‍👧 🇳🇱 e\u0301 @jan@social.example") == 10


def test_mastodon_rate_limit_headers_and_429(masto: FakeMastodon) -> None:
    masto.state.rate_limit = RateWindow(limit=3, period=60)
    api = Mastodon(
        access_token=masto.access_token, api_base_url=masto.url, ratelimit_method="throw"
    )
    api.status_post("een")
    assert (api.ratelimit_limit, api.ratelimit_remaining) == (3, 2)
    api.status_post("twee")
    api.status_post("drie")
    with pytest.raises(MastodonRatelimitError):
        api.status_post("vier")
    raw = httpx.get(f"{masto.url}/api/v1/instance")
    assert raw.status_code == 429 and raw.headers["X-RateLimit-Remaining"] == "0"
    assert raw.headers["X-RateLimit-Reset"].endswith("Z")
    assert len(masto.state.posts) == 3 and len(masto.state.rate_limited) == 2


def test_mastodon_auth_and_faults(masto: FakeMastodon, api: Mastodon) -> None:
    wrong = Mastodon(access_token="nope", api_base_url=masto.url, ratelimit_method="throw")
    with pytest.raises(MastodonUnauthorizedError, match="access token is invalid"):
        wrong.status_post("x")
    masto.state.faults.fail_next(1, 500)
    with pytest.raises(MastodonInternalServerError):
        api.status_post("x")
    assert api.status_post("x").id
