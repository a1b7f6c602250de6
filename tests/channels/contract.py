"""The adapter contract: what every channel adapter does with its provider's answers.

A plain helper module, not a test module: ``tests/channels/test_contract.py`` runs each case
below. One ``AdapterCase`` per adapter says how to build the adapter against its local stand-in
provider (``tests/fakes``, real client library over real HTTP) and how to make that stand-in
answer each way. An outcome an adapter can never produce is declared in ``cannot`` with the
reason, and the contract test skips with that reason instead of passing in silence.

A new adapter joins the contract by adding one case to ``CASES``.
"""

from __future__ import annotations

import html
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.base import Channel, ChannelContext, Message, Target, UpdateView
from channels.email import EmailChannel
from channels.facebook import FacebookChannel
from channels.mastodon import MastodonChannel
from channels.platform import PlatformChannel
from channels.push import PushChannel
from channels.push.crypto import Subscription, new_key_pair
from channels.sms import SmsChannel, WhatsAppChannel
from channels.sms.channel import WHATSAPP_MAX_CHARS
from channels.telegram import TelegramChannel
from channels.telegram.classify import RecentChats
from channels.text import utf16_len
from channels.webhook import WebhookChannel
from tests.fakes.facebook import FakeFacebook
from tests.fakes.mastodon import FakeMastodon, RateWindow, countable_length
from tests.fakes.push import Browser, FakePushService
from tests.fakes.receiver import receiver_app
from tests.fakes.server import FakeServer, HeldFromFirstLook
from tests.fakes.smtp import FakeSmtp, FixedKeySigner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio

PUBLIC_URL = "https://crisis.gemeente.example"
WEBHOOK_SECRET = "contract-webhook-secret"
OUTCOMES = ("sent", "retry_channel", "retry_target", "gone", "moved", "failed")
RETRY_AFTER = 7.0  # what the webhook receiver announces


def update(body: str = "Het water stijgt; zandzakken bij de brandweer.") -> UpdateView:
    return UpdateView(
        id=7,
        kind="update",
        severity="warning",
        body={"nl": body, "en": "The water is rising."},
        url=f"{PUBLIC_URL}/u/7",
        incident_title="Hoogwater Maas",
    )


# --- a provider that answers nonsense ------------------------------------------------------------

HOSTILE_ANSWERS = {
    "not json": (200, b"<html><body>Welkom bij het gastennetwerk</body></html>", "text/html"),
    "json of another shape": (200, b'[{"unexpected": true}]', "application/json"),
    "truncated json": (200, b'{"ok": true, "result": {"message_id": 1, "ch', "application/json"),
    "oversized": (200, b'{"padding": "' + b"x" * 8_000_000 + b'"}', "application/json"),
}


@contextmanager
def hostile_provider(answer: str) -> Iterator[FakeServer]:
    """Answers every request (any path, any method) with ``HOSTILE_ANSWERS[answer]``."""
    status, body, content_type = HOSTILE_ANSWERS[answer]

    async def anything(request: Request) -> Response:
        await request.body()
        return Response(body, status_code=status, media_type=content_type)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    app = Starlette(routes=[Route("/{path:path}", anything, methods=methods)])
    with FakeServer(app) as server:
        yield server


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# --- the cases -----------------------------------------------------------------------------------


class AdapterCase:
    """How to run one adapter against its stand-in. ``arrange_<outcome>(fake, adapter)`` makes
    the stand-in answer that way and returns the target to send to."""

    id: ClassVar[str]
    channel_class: ClassVar[type[Channel]]
    cannot: ClassVar[dict[str, str]] = {}  # outcome -> why this adapter never produces it
    cannot_hostile: ClassVar[str | None] = None  # why there is no provider answer to garble

    @contextmanager
    def provider(self) -> Iterator[Any]:
        """The local stand-in, started."""
        raise NotImplementedError

    def settings(self, fake: Any) -> dict[str, Any]:
        """Settings that point the adapter at ``fake``."""
        raise NotImplementedError

    def settings_at(self, url: str) -> dict[str, Any]:
        """Settings that point the adapter at a provider listening on ``url``."""
        raise NotImplementedError

    def hostile_target(self, url: str) -> Target:
        return self.resident()

    def context(self) -> ChannelContext:
        return ChannelContext(public_url=PUBLIC_URL)

    unconfigured: ClassVar[dict[str, Any]] = {}  # settings that leave the channel off
    invalid: ClassVar[dict[str, Any]] = {}  # settings the Settings model refuses
    no_retry_after: ClassVar[dict[str, str]] = {}  # retry outcome -> why no wait is announced
    ignores_answer_body: ClassVar[bool] = False  # a 2xx is all it reads of an answer

    def build(self, settings: dict[str, Any]) -> Channel:
        cls = self.channel_class
        return cls(cls.Settings.model_validate(settings), self.context())

    def build_unconfigured(self) -> Channel:
        return self.build(self.unconfigured)

    def limit(self, adapter: Channel) -> int | None:
        """The most ``measure`` may say of a rendered message; None: no limit."""
        return adapter.limits.max_chars

    def resident(self) -> Target:
        return Target(self.address, delivery_id=1, per_subscriber=True)

    address: ClassVar[str] = ""

    def measure(self, message: Message) -> int:
        """The message's length as the provider counts it against ``limits.max_chars``."""
        return len(message.text)

    def provider_id(self, fake: Any) -> str | None:
        """The id the stand-in gave the message it accepted last."""
        raise NotImplementedError

    async def arrange_sent(self, fake: Any, adapter: Channel) -> Target:
        return self.resident()


class PlatformCase(AdapterCase):
    """The public site: sending is announcing to the live pages through the core's callback,
    which stands in for the provider."""

    id = "platform"
    channel_class = PlatformChannel
    address = "public"
    unconfigured: ClassVar[dict[str, Any]] = {}
    invalid: ClassVar[dict[str, Any]] = {}
    _in_process = "the platform announces in-process through the core's callback; no provider"
    cannot: ClassVar[dict[str, str]] = {
        "retry_channel": f"{_in_process} answers with a limit",
        "retry_target": f"{_in_process} answers with a limit",
        "gone": "the public site has no recipients who can leave",
        "moved": "the public site has one fixed target",
        "failed": f"{_in_process} refuses a message",
    }
    cannot_hostile = _in_process + " answer to garble or to be unreachable"

    def __init__(self) -> None:
        self.announced: list[UpdateView] = []

    @contextmanager
    def provider(self) -> Iterator[list[UpdateView]]:
        self.announced = []
        yield self.announced

    def context(self) -> ChannelContext:
        async def announce(view: UpdateView) -> None:
            self.announced.append(view)

        return ChannelContext(public_url=PUBLIC_URL, announce=announce)

    def settings(self, fake: Any) -> dict[str, Any]:
        return {}

    def build_unconfigured(self) -> Channel:
        return self.channel_class(self.channel_class.Settings(), ChannelContext(PUBLIC_URL))

    def resident(self) -> Target:
        return Target(self.address, delivery_id=1, per_subscriber=False)

    def provider_id(self, fake: list[UpdateView]) -> str | None:
        return f"update-{fake[-1].id}"


class WebhookCase(AdapterCase):
    """Signed JSON POSTs to a partner's receiver (tests/fakes/receiver.py)."""

    id = "webhook"
    channel_class = WebhookChannel
    ignores_answer_body = True  # the receiver's status code is the whole answer
    unconfigured: ClassVar[dict[str, Any]] = {"urls": []}
    invalid: ClassVar[dict[str, Any]] = {"secret": WEBHOOK_SECRET, "timeout_seconds": "soon"}
    cannot: ClassVar[dict[str, str]] = {
        "retry_channel": "every URL is a server of its own: a receiver's refusal (429, 5xx, "
        "time-out) concerns its own deliveries, never the lane of the other partners",
        "moved": "redirects are never followed (a 301 is a permanent failure): a receiver "
        "that moves is re-configured, not followed",
    }

    @contextmanager
    def provider(self) -> Iterator[FakeServer]:
        app = receiver_app(WEBHOOK_SECRET)
        with FakeServer(app) as server:
            server.state = app.state.receiver
            self.address = f"{server.url}/partner"
            yield server

    def settings(self, fake: Any) -> dict[str, Any]:
        return self.settings_at(fake.url)

    def settings_at(self, url: str) -> dict[str, Any]:
        return {"secret": WEBHOOK_SECRET, "allow_private_addresses": True, "timeout_seconds": 5}

    def hostile_target(self, url: str) -> Target:
        return Target(f"{url}/partner", delivery_id=1, per_subscriber=True)

    def provider_id(self, fake: Any) -> str | None:
        return "receiver-42"

    async def arrange_sent(self, fake: Any, adapter: Channel) -> Target:
        fake.state.answer(202, **{"X-Request-Id": "receiver-42"})
        return self.resident()

    async def arrange_retry_target(self, fake: Any, adapter: Channel) -> Target:
        fake.state.answer(429, **{"Retry-After": str(int(RETRY_AFTER))})
        return self.resident()

    async def arrange_gone(self, fake: Any, adapter: Channel) -> Target:
        fake.state.answer(410)
        return self.resident()

    async def arrange_failed(self, fake: Any, adapter: Channel) -> Target:
        fake.state.answer(400)
        return self.resident()


class TelegramCase(AdapterCase):
    """python-telegram-bot against the Bot API stand-in (tests/fakes/telegram.py)."""

    id = "telegram"
    channel_class = TelegramChannel
    address = "4242"
    unconfigured: ClassVar[dict[str, Any]] = {"bot_token": " "}
    invalid: ClassVar[dict[str, Any]] = {"bot_token": "1:x", "timeout_seconds": "soon"}

    @contextmanager
    def provider(self) -> Iterator[FakeTelegram]:
        with FakeTelegram() as fake:
            yield fake

    def settings(self, fake: FakeTelegram) -> dict[str, Any]:
        return {"bot_token": fake.token, "api_url": fake.url, "timeout_seconds": 5}

    def settings_at(self, url: str) -> dict[str, Any]:
        return {"bot_token": FakeTelegram().token, "api_url": url, "timeout_seconds": 5}

    def measure(self, message: Message) -> int:
        return utf16_len(_without_tags(message.text))

    def provider_id(self, fake: FakeTelegram) -> str | None:
        last = fake.state.sent[-1]
        return f"{last.chat_id}:{last.message_id}"

    async def arrange_retry_channel(self, fake: FakeTelegram, adapter: Channel) -> Target:
        fake.state.global_limit = HeldFromFirstLook(1, 60.0)  # the bot's allowance is used up
        return self.resident()

    async def arrange_retry_target(self, fake: FakeTelegram, adapter: Channel) -> Target:
        # We wrote to this chat a moment ago (by the adapter's clock, frozen here so that a slow
        # machine cannot make it long ago), and the chat's own limit still holds.
        adapter.recent = RecentChats(clock=lambda: 0.0)
        adapter.recent.sent(self.address)
        fake.state.chat_limit = HeldFromFirstLook(1, 60.0, key=int(self.address))
        return self.resident()

    async def arrange_gone(self, fake: FakeTelegram, adapter: Channel) -> Target:
        fake.state.blocked_chats.add(int(self.address))
        return self.resident()

    async def arrange_moved(self, fake: FakeTelegram, adapter: Channel) -> Target:
        fake.state.migrated_chats[-4242] = -1004242
        return Target("-4242", delivery_id=1, per_subscriber=True)

    async def arrange_failed(self, fake: FakeTelegram, adapter: Channel) -> Target:
        fake.state.blocked_chats.add("@gemeente")  # the bot was removed from the channel
        return Target("@gemeente", delivery_id=1, per_subscriber=False)


class SmsCase(AdapterCase):
    """The twilio client against the Twilio stand-in (tests/fakes/twilio.py)."""

    id = "sms"
    channel_class = SmsChannel
    address = "+31612345678"
    sender = "+3197010000000"
    unconfigured: ClassVar[dict[str, Any]] = {"account_sid": "AC1", "auth_token": ""}
    invalid: ClassVar[dict[str, Any]] = {"max_segments": 11}
    cannot: ClassVar[dict[str, str]] = {
        "moved": "a phone number does not move; a number that is no longer in use is gone",
    }

    @contextmanager
    def provider(self) -> Iterator[FakeTwilio]:
        with FakeTwilio() as fake:
            yield fake

    def _credentials(self, account_sid: str, auth_token: str, url: str) -> dict[str, Any]:
        return {
            "account_sid": account_sid,
            "auth_token": auth_token,
            "from": self.sender,
            "whatsapp_from": self.sender,
            "api_url": url,
            "timeout_seconds": 5,
        }

    def settings(self, fake: FakeTwilio) -> dict[str, Any]:
        return self._credentials(fake.account_sid, fake.auth_token, fake.url)

    def settings_at(self, url: str) -> dict[str, Any]:
        fake = FakeTwilio()
        return self._credentials(fake.account_sid, fake.auth_token, url)

    no_retry_after: ClassVar[dict[str, str]] = {
        "retry_channel": "Twilio's 429 (20429) names no wait: the core backs off with jitter",
    }

    def measure(self, message: Message) -> int:
        return message.parts

    def limit(self, adapter: Channel) -> int | None:
        return adapter.settings.max_segments

    def provider_id(self, fake: FakeTwilio) -> str | None:
        return fake.state.messages[-1]["sid"]

    async def arrange_retry_channel(self, fake: FakeTwilio, adapter: Channel) -> Target:
        # the account's queue is full: 20429
        fake.state.rate_limit = HeldFromFirstLook(1, 60.0, key=fake.account_sid)
        return self.resident()

    async def arrange_retry_target(self, fake: FakeTwilio, adapter: Channel) -> Target:
        # Twilio holds this pair of numbers: 14107
        fake.state.pair_limit = HeldFromFirstLook(1, 30.0, key=self.address)
        return self.resident()

    async def arrange_gone(self, fake: FakeTwilio, adapter: Channel) -> Target:
        # The resident texted STOP (21610); Twilio keeps it per number, whatever the channel.
        fake.state.unsubscribed.add(self.address.removeprefix("whatsapp:"))
        return self.resident()

    async def arrange_failed(self, fake: FakeTwilio, adapter: Channel) -> Target:
        fake.state.blocked_prefixes.add("+31")  # no geo permission for the country: 21408
        return self.resident()


class WhatsAppCase(SmsCase):
    """WhatsApp through the same Twilio account and stand-in."""

    id = "whatsapp"
    channel_class = WhatsAppChannel
    address = "whatsapp:+31612345678"
    unconfigured: ClassVar[dict[str, Any]] = {
        "account_sid": "AC1",
        "auth_token": "secret",
        "from": "+3197010000000",
    }
    invalid: ClassVar[dict[str, Any]] = {"timeout_seconds": 0}

    def measure(self, message: Message) -> int:
        return len(message.text)

    def limit(self, adapter: Channel) -> int | None:
        return WHATSAPP_MAX_CHARS

    async def arrange_retry_target(self, fake: FakeTwilio, adapter: Channel) -> Target:
        fake.state.pair_limit = HeldFromFirstLook(1, 30.0, key=self.address)
        return self.resident()


class MastodonCase(AdapterCase):
    """Mastodon.py against the Mastodon stand-in (tests/fakes/mastodon.py)."""

    id = "mastodon"
    channel_class = MastodonChannel
    address = "account"
    unconfigured: ClassVar[dict[str, Any]] = {"url": "https://social.example"}
    invalid: ClassVar[dict[str, Any]] = {"visibility": "everyone"}
    cannot: ClassVar[dict[str, str]] = {
        "retry_target": "one account is the only target: every limit is the channel's",
        "gone": "posts go to the municipality's own account; no resident subscribes here",
        "moved": "an account that moved keeps answering at the configured instance",
    }

    @contextmanager
    def provider(self) -> Iterator[FakeMastodon]:
        with FakeMastodon() as fake:
            yield fake

    def settings(self, fake: FakeMastodon) -> dict[str, Any]:
        return {"url": fake.url, "token": fake.access_token, "timeout_seconds": 5}

    def settings_at(self, url: str) -> dict[str, Any]:
        return {"url": url, "token": "contract-token", "timeout_seconds": 5}

    def resident(self) -> Target:
        return Target(self.address, delivery_id=1, per_subscriber=False)

    def measure(self, message: Message) -> int:
        return countable_length(message.text)

    def provider_id(self, fake: FakeMastodon) -> str | None:
        return list(fake.state.statuses)[-1]

    async def arrange_retry_channel(self, fake: FakeMastodon, adapter: Channel) -> Target:
        fake.state.rate_limit = RateWindow(limit=1, period=30, used_up=True)
        return self.resident()

    async def arrange_failed(self, fake: FakeMastodon, adapter: Channel) -> Target:
        fake.state.max_characters = 10  # 422 "Validation failed: Text character limit"
        return self.resident()


class EmailCase(AdapterCase):
    """aiosmtplib against an aiosmtpd server in-process (tests/fakes/smtp.py)."""

    id = "email"
    channel_class = EmailChannel
    address = "bewoner@example.nl"
    mail_from = "Gemeente <crisis@gemeente.example>"
    unconfigured: ClassVar[dict[str, Any]] = {"url": "", "mail_from": "crisis@gemeente.example"}
    invalid: ClassVar[dict[str, Any]] = {"per_connection": 0}
    cannot: ClassVar[dict[str, str]] = {
        "moved": "SMTP has no machine-readable new address (551 names one only in free text): "
        "a mailbox that is not there any more is gone",
    }

    @contextmanager
    def provider(self) -> Iterator[FakeSmtp]:
        with FakeSmtp() as fake:
            yield fake

    def context(self) -> ChannelContext:
        return ChannelContext(public_url=PUBLIC_URL, signer=FixedKeySigner())

    def settings(self, fake: FakeSmtp) -> dict[str, Any]:
        return {"url": fake.url, "mail_from": self.mail_from, "timeout_seconds": 5}

    def settings_at(self, url: str) -> dict[str, Any]:
        # An HTTP server never greets: the client's time-out is what it meets.
        smtp = url.replace("http://", "smtp://", 1)
        return {"url": smtp, "mail_from": self.mail_from, "timeout_seconds": 2}

    def provider_id(self, fake: FakeSmtp) -> str | None:
        return str(fake.state.last()["Message-ID"])

    async def arrange_retry_channel(self, fake: FakeSmtp, adapter: Channel) -> Target:
        fake.state.server_busy = 1  # 421 "try again in 30 seconds" at MAIL FROM
        return self.resident()

    async def arrange_retry_target(self, fake: FakeSmtp, adapter: Channel) -> Target:
        fake.state.busy[self.address] = 1  # 450 at RCPT: greylisted
        return self.resident()

    async def arrange_gone(self, fake: FakeSmtp, adapter: Channel) -> Target:
        fake.state.gone.add(self.address)  # 550 5.1.1 at RCPT
        return self.resident()

    async def arrange_failed(self, fake: FakeSmtp, adapter: Channel) -> Target:
        fake.state.reject_data = True  # 554 5.7.1 at DATA: rejected as spam
        return self.resident()


VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY = new_key_pair()


class PushCase(AdapterCase):
    """Web push (http_ece + py_vapid over httpx) against the push service stand-in
    (tests/fakes/push.py), which checks the VAPID token and decrypts every message."""

    id = "push"
    channel_class = PushChannel
    ignores_answer_body = True  # a push service's status and Location are the whole answer
    unconfigured: ClassVar[dict[str, Any]] = {"vapid_subject": "mailto:crisis@gemeente.example"}
    invalid: ClassVar[dict[str, Any]] = {"timeout_seconds": "soon"}
    cannot: ClassVar[dict[str, str]] = {
        "retry_channel": "every endpoint is one browser at one of several push services: a "
        "refusal (429, 5xx, time-out) holds that subscription, never the lane for the others",
        "moved": "a subscription does not move: a browser that renews it subscribes anew",
    }

    def __init__(self) -> None:
        self.browser: Browser | None = None

    @contextmanager
    def provider(self) -> Iterator[FakePushService]:
        with FakePushService() as fake:
            self.browser = fake.subscribe(application_server_key=VAPID_PUBLIC_KEY)
            self.address = self.browser.subscription.address
            yield fake

    def settings(self, fake: Any) -> dict[str, Any]:
        return self.settings_at(fake.url)

    def settings_at(self, url: str) -> dict[str, Any]:
        return {
            "vapid_private_key": VAPID_PRIVATE_KEY,
            "vapid_subject": "mailto:crisis@gemeente.example",
            "allow_private_addresses": True,
            "timeout_seconds": 5,
        }

    def hostile_target(self, url: str) -> Target:
        keys = FakePushService().subscribe().subscription
        address = Subscription(f"{url}/push/abc", keys.p256dh, keys.auth).address
        return Target(address, delivery_id=1, per_subscriber=True)

    def provider_id(self, fake: FakePushService) -> str | None:
        return f"{fake.url}/m/{len(fake.state.received)}"

    async def arrange_retry_target(self, fake: FakePushService, adapter: Channel) -> Target:
        assert self.browser is not None
        fake.state.rate_limit = HeldFromFirstLook(1, 60.0, key=self.browser.token)
        return self.resident()

    async def arrange_gone(self, fake: FakePushService, adapter: Channel) -> Target:
        assert self.browser is not None
        fake.state.unsubscribe(self.browser)
        return self.resident()

    async def arrange_failed(self, fake: FakePushService, adapter: Channel) -> Target:
        # The browser subscribed with another server's key: the push service answers 403.
        _, other_key = new_key_pair()
        stranger = fake.subscribe(application_server_key=other_key)
        return Target(stranger.subscription.address, delivery_id=1, per_subscriber=True)


class FacebookCase(AdapterCase):
    """httpx against the Graph API stand-in (tests/fakes/facebook.py)."""

    id = "facebook"
    channel_class = FacebookChannel
    address = "page"
    unconfigured: ClassVar[dict[str, Any]] = {"page_id": "104857600000001", "page_token": " "}
    invalid: ClassVar[dict[str, Any]] = {"page_id": "1", "timeout_seconds": 0}
    cannot: ClassVar[dict[str, str]] = {
        "retry_target": "the Page is the only target: every limit is the channel's",
        "gone": "posts go to the municipality's own Page; no resident subscribes here",
        "moved": "a Page keeps its id when it is renamed",
    }

    @contextmanager
    def provider(self) -> Iterator[FakeFacebook]:
        with FakeFacebook() as fake:
            yield fake

    def settings(self, fake: FakeFacebook) -> dict[str, Any]:
        state = fake.state
        return {
            "page_id": state.page_id,
            "page_token": state.page_token,
            "api_url": fake.url,
            "timeout_seconds": 5,
        }

    def settings_at(self, url: str) -> dict[str, Any]:
        return {
            "page_id": "1",
            "page_token": "contract-token",
            "api_url": url,
            "timeout_seconds": 5,
        }

    def resident(self) -> Target:
        return Target(self.address, delivery_id=1, per_subscriber=False)

    def measure(self, message: Message) -> int:
        return utf16_len(message.text)

    def limit(self, adapter: Channel) -> int | None:
        # 63,206 characters is more than the contract's long body (~7,000): it goes whole
        # (tests/channels/test_facebook.py cuts a longer one).
        return None

    def provider_id(self, fake: FakeFacebook) -> str | None:
        return list(fake.state.posts)[-1]

    async def arrange_retry_channel(self, fake: FakeFacebook, adapter: Channel) -> Target:
        fake.state.rate_limit = RateWindow(limit=1, period=3600, used_up=True)  # code 32
        return self.resident()

    async def arrange_failed(self, fake: FakeFacebook, adapter: Channel) -> Target:
        fake.state.page_id = "104857600000002"  # the configured id is not the Page: code 100
        return self.resident()


def _without_tags(html_text: str) -> str:
    """Telegram counts the text after entity parsing: tags and escapes do not count."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


CASES: list[AdapterCase] = [
    PlatformCase(),
    WebhookCase(),
    TelegramCase(),
    SmsCase(),
    WhatsAppCase(),
    MastodonCase(),
    EmailCase(),
    PushCase(),
    FacebookCase(),
]
