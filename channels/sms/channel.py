"""SMS, and WhatsApp, through Twilio Programmable Messaging (REST API 2010-04-01).

The real ``twilio.rest.Client`` is blocking (requests). Its calls run in a thread pool of the
channel's own, sized to its concurrency, so a slow Twilio never holds the threads the dispatcher
needs for the database. Not twilio's ``AsyncTwilioHttpClient``: it ignores its ``timeout``
setting (only a per-call timeout reaches aiohttp, and ``messages.create_async`` passes none), so
a hanging API would hold a send for aiohttp's default five minutes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import phonenumbers
from pydantic import Field, SecretStr, create_model, field_validator
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels.base import (
    SIGNUP_BY_CODE,
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSettings,
    Limits,
    Measurement,
    Message,
    Receipt,
    Target,
    UpdateView,
)
from channels.errors import (
    TARGET,
    UNREADABLE_ANSWER,
    ChannelError,
    NotConfigured,
    PermanentFailure,
    RecipientGone,
    RetryLater,
    unreadable_answer,
)
from channels.sms.numbers import to_e164
from channels.text import compose_plain, fit, fit_sms, gsm_friendly, headline, sms_info

if TYPE_CHECKING:
    from fastapi import APIRouter

DEFAULT_API_URL = "https://api.twilio.com"
WHATSAPP = "whatsapp:"
SIGNUP_KEYWORD = "AANMELDEN"  # with a postcode: "AANMELDEN 6585" (channels/sms/inbound.py)
WHATSAPP_MAX_CHARS = 1600  # Twilio's body limit, below WhatsApp's own 4096
CONCURRENCY = 8  # below requests' default pool of 10 connections per host

# Twilio error codes (https://www.twilio.com/docs/api/errors). Reasons never repeat Twilio's
# message: it names the phone number, which must not reach logs or the deliveries table.
RETRY_CODES = frozenset({20429, 20500, 20503, 63017, 63018})  # 6301x: account/sender rate
# 14107: too many messages between our sender and this one number (a loop guard); Twilio holds
# that pair for 30 seconds. Only this recipient waits; the rest of the broadcast carries on.
PAIR_LIMIT_CODES = frozenset({14107})
PAIR_LIMIT_SECONDS = 30.0
# Failures that a status callback reports after the message was accepted, but that pass: the
# message is sent again after this many seconds (14107 as above; 30001: the sender's queue
# overflowed; 63017/63018: rate limits), as long as the delivery has attempts left.
CALLBACK_RETRY_SECONDS = {14107: PAIR_LIMIT_SECONDS, 30001: 300.0, 63017: 60.0, 63018: 60.0}
GONE_CODES = frozenset({21610})  # the resident texted STOP: carriers refuse everything
INVALID_NUMBER_CODES = frozenset({21211, 21614})  # not a (mobile) number: nobody to reach
ERROR_NAMES = {
    20003: "authentication failed",
    14107: "too many messages to this number in a short time",
    20429: "too many requests",
    21211: "invalid 'To' number",
    21408: "region not enabled in the account's geo permissions",
    21610: "recipient unsubscribed (STOP)",
    21612: "'To' number cannot be reached from this sender",
    21614: "'To' number is not a mobile number",
    21617: "body too long",
    30001: "queue overflow",
    63016: "WhatsApp: outside the 24-hour window, a template is required",
    63017: "account rate limit exceeded",
    63018: "rate limit exceeded for the channel",
}


class _TwilioFields(ChannelSettings):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    messaging_service_sid: str | None = None
    api_url: str = DEFAULT_API_URL
    max_segments: int = Field(3, ge=1, le=10)  # Twilio advises at most 10 segments
    status_callback: bool = True
    allowed_countries: list[str] = ["31"]  # calling codes
    timeout_seconds: float = Field(10.0, gt=0)
    rate: float = Field(10.0, gt=0)  # messages per second the account (or service) may send

    @field_validator("allowed_countries", mode="before")
    @classmethod
    def _calling_codes(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(code).strip().lstrip("+") for code in value if str(code).strip()]
        return value


# The field must be *named* "from": the core reads BROADCAST_<PREFIX>_<FIELD NAME>, and the
# contract says BROADCAST_TWILIO_FROM. A class body cannot declare a keyword, so it is added here.
_FROM_FIELD: dict[str, Any] = {"from": (str | None, None)}
TwilioSettings = create_model("TwilioSettings", __base__=_TwilioFields, **_FROM_FIELD)


# WhatsApp Content templates (https://www.twilio.com/docs/content). Outside the 24-hour
# customer-service window WhatsApp takes only approved templates: free-form text then fails
# with 63016, usually in the status callback after Twilio accepted it.
OUTSIDE_WINDOW = 63016
TEMPLATE_SID = re.compile(r"HX[0-9a-fA-F]{32}")
# What a template is for: every broadcast falls back to "update", a private answer to
# "answer", then "update". ":photo" variants carry the update's photo as a media header.
TEMPLATE_PURPOSES = frozenset(
    {"update", "answer", "correction", "retraction", "all_clear"}
    | {"info", "advisory", "warning", "emergency"}
)
PHOTO = ":photo"
# WhatsApp refuses a template whose text with its variables passes 1,024 characters (63021);
# the text variable is cut (with the link in a variable of its own) to leave room for the
# template's own words and the headline.
TEMPLATE_TEXT_MAX = 700
TEMPLATE_CALLBACK = "content=template"  # on the status callback URL of a template send


class WhatsAppSettings(TwilioSettings):
    whatsapp_from: str | None = None  # BROADCAST_TWILIO_WHATSAPP_FROM
    # BROADCAST_TWILIO_WHATSAPP_TEMPLATES: JSON, purpose -> ContentSid, e.g.
    # {"update": "HX…", "emergency": "HX…", "answer": "HX…", "update:photo": "HX…"}
    whatsapp_templates: dict[str, str] = {}

    @field_validator("whatsapp_templates", mode="before")
    @classmethod
    def _templates_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object of purpose -> ContentSid: {exc}") from None
        return value

    @field_validator("whatsapp_templates")
    @classmethod
    def _templates_known(cls, value: dict[str, str]) -> dict[str, str]:
        for purpose, sid in value.items():
            if purpose.removesuffix(PHOTO) not in TEMPLATE_PURPOSES:
                known = ", ".join(sorted(TEMPLATE_PURPOSES))
                raise ValueError(f"unknown template purpose {purpose!r} (known: {known})")
            if not TEMPLATE_SID.fullmatch(sid):
                raise ValueError(f"template {purpose!r}: a ContentSid is HX and 32 hex digits")
        if value and "update" not in value:
            raise ValueError('templates need an "update" one: every broadcast falls back to it')
        return value


def _given(value: str | SecretStr | None) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return (value or "").strip()


class SmsChannel(Channel):
    name = "sms"
    settings_prefix = "TWILIO"
    limits = Limits(per_second=10.0, concurrency=CONCURRENCY)
    capabilities = Capabilities(per_subscriber=True, status_callbacks=True, inbound=True)
    Settings = TwilioSettings
    settings: _TwilioFields
    inbound_path: ClassVar[str] = "/webhooks/twilio/sms"
    status_path: ClassVar[str] = "/webhooks/twilio/status"
    confirms_stop: ClassVar[bool] = False  # Twilio and the carriers confirm an SMS STOP
    previewed = True
    self_signup: ClassVar[str | None] = SIGNUP_BY_CODE  # every mobile phone can receive the code

    def __init__(self, settings: Any, context: ChannelContext):
        super().__init__(settings, context)
        if not (_given(settings.account_sid) and _given(settings.auth_token)):
            raise NotConfigured(
                "BROADCAST_TWILIO_ACCOUNT_SID and BROADCAST_TWILIO_AUTH_TOKEN are not set"
            )
        self.sender = self._sender(settings)
        self.auth_token = _given(settings.auth_token)
        self.allowed_countries = frozenset(settings.allowed_countries)
        self.limits = Limits(per_second=settings.rate, concurrency=CONCURRENCY)
        self._client: Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _sender(self, settings: Any) -> dict[str, str]:
        """A messaging service when there is one (it picks from a sender pool), else From."""
        if service := _given(settings.messaging_service_sid):
            return {"messaging_service_sid": service}
        if sender := _given(getattr(settings, "from")):
            return {"from_": sender}
        raise NotConfigured(
            "neither BROADCAST_TWILIO_FROM nor BROADCAST_TWILIO_MESSAGING_SERVICE_SID is set"
        )

    # --- addresses and messages -----------------------------------------------------------

    def normalize_address(self, address: str) -> str:
        return to_e164(address, self.allowed_countries)

    def render(self, update: UpdateView, language: str) -> Message:
        # Typographic quotes and dashes would switch the whole text to UCS-2 (70 per segment).
        text = gsm_friendly(compose_plain(update, language))
        fitted = fit_sms(text, update.url, self.settings.max_segments)
        return Message(
            update_id=update.id,
            language=language,
            text=fitted.text,
            parts=fitted.parts,
            shortened=fitted.shortened,
        )

    def measure(self, text: str) -> Measurement:
        """In segments, as carriers bill them, against the configured maximum."""
        info = sms_info(text)
        return Measurement(info.segments, self.settings.max_segments, "segments", info.encoding)

    def text_to_subscribe(self) -> tuple[str, str] | None:
        """``AANMELDEN`` to the sending number (``BROADCAST_TWILIO_FROM``), written as people
        dial it; a messaging service alone has no one number to show."""
        number = _given(getattr(self.settings, "from"))
        if not number:
            return None
        with suppress(phonenumbers.NumberParseException):
            parsed = phonenumbers.parse(number, None)
            number = phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
        return SIGNUP_KEYWORD, number

    # --- sending --------------------------------------------------------------------------

    async def start(self) -> None:
        self._open()

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None and self._client.http_client.session is not None:
            self._client.http_client.session.close()
        self._client = self._pool = None

    def _open(self) -> Client:
        if self._client is None:
            http = TwilioHttpClient(timeout=self.settings.timeout_seconds)
            client = Client(self.settings.account_sid, self.auth_token, http_client=http)
            # Edge and region (also read from TWILIO_EDGE/REGION) would rewrite the host of
            # api_url; a regional endpoint is chosen with api_url instead.
            client.edge = client.region = None
            client.api.base_url = self.settings.api_url.rstrip("/")
            self._client = client
            self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix=f"{self.name}-twilio")
        return self._client

    def webhook_url(self, path: str) -> str:
        return self.context.public_url.rstrip("/") + path

    async def send(self, message: Message, target: Target) -> Receipt:
        client = self._open()
        content = self.content(message, target)
        params: dict[str, Any] = {"to": target.address, **content, **self.sender}
        if self.settings.status_callback:
            callback = self.webhook_url(self.status_path)
            params["status_callback"] = (
                f"{callback}?{TEMPLATE_CALLBACK}" if "content_sid" in content else callback
            )
        create = functools.partial(client.messages.create, **params)
        try:
            sent = await asyncio.get_running_loop().run_in_executor(self._pool, create)
        except TwilioRestException as exc:
            # the cause's text names the number
            raise self.classify(exc, target, template="content_sid" in content) from None
        except OSError as exc:  # requests' errors are OSErrors: refused, reset, timed out
            # A read timeout may mean Twilio accepted it anyway; Twilio has no idempotency
            # key for messages, so a retry can duplicate. Losing a warning is worse.
            raise RetryLater(f"Twilio unreachable: {type(exc).__name__}") from None
        except UNREADABLE_ANSWER as exc:
            raise unreadable_answer("Twilio", exc) from None
        if not sent.sid:  # a 2xx without the message's id: nothing to match callbacks with
            raise RetryLater("Twilio answered without a message id")
        return Receipt(provider_id=sent.sid)

    def content(self, message: Message, target: Target) -> dict[str, Any]:
        """What the message says, as parameters of Twilio's create call."""
        return {"body": message.text}

    def classify(self, exc: TwilioRestException, target: Target, *, template: bool) -> ChannelError:
        return classify(exc, target)

    def callback_retry_after(self, code: int, *, template: bool) -> float | None:
        """Seconds after which a message that a status callback reports failed is sent again."""
        return CALLBACK_RETRY_SECONDS.get(code)

    def router(self) -> APIRouter | None:
        if self.context.hooks is None:
            return None
        from channels.sms.inbound import inbound_router

        return inbound_router(self)


def classify(exc: TwilioRestException, target: Target) -> ChannelError:
    """A Twilio REST error as retry-later, recipient-gone or permanent."""
    status, code = exc.status or 0, exc.code
    reason = f"Twilio error {code} (HTTP {status})"
    if code in ERROR_NAMES:
        reason += f": {ERROR_NAMES[code]}"
    if code in PAIR_LIMIT_CODES:
        return RetryLater(reason, retry_after=PAIR_LIMIT_SECONDS, scope=TARGET)
    if status in (408, 429) or status >= 500 or code in RETRY_CODES:
        return RetryLater(reason)  # account-wide: the lane pauses
    if code in GONE_CODES or (code in INVALID_NUMBER_CODES and target.per_subscriber):
        return RecipientGone(reason)
    return PermanentFailure(reason)


class WhatsAppChannel(SmsChannel):
    """The same Twilio account and code; addresses and the sender carry "whatsapp:"."""

    name = "whatsapp"
    Settings = WhatsAppSettings
    inbound_path = "/webhooks/twilio/whatsapp"
    status_path = "/webhooks/twilio/whatsapp/status"
    confirms_stop = True  # nobody else answers a STOP on WhatsApp
    self_signup = None  # the web sign-up texts its code by SMS

    @property
    def templates(self) -> dict[str, str]:
        # A property, not set in __init__: the console's preview renderer skips __init__.
        return getattr(self.settings, "whatsapp_templates", {})

    def text_to_subscribe(self) -> tuple[str, str] | None:
        return None  # posters show the SMS number; WhatsApp residents find us by the site

    def _sender(self, settings: Any) -> dict[str, str]:
        sender = _given(settings.whatsapp_from).removeprefix(WHATSAPP)
        if not sender:
            raise NotConfigured("BROADCAST_TWILIO_WHATSAPP_FROM is not set")
        return {"from_": WHATSAPP + sender}

    def normalize_address(self, address: str) -> str:
        number = address.strip()
        if number.lower().startswith(WHATSAPP):
            number = number[len(WHATSAPP) :]
        return WHATSAPP + to_e164(number, self.allowed_countries)

    def _render_free_form(self, update: UpdateView, language: str) -> Message:
        # No segments on WhatsApp: every character is fine, only Twilio's body limit counts.
        fitted = fit(compose_plain(update, language), WHATSAPP_MAX_CHARS, update.url)
        return Message(
            update_id=update.id, language=language, text=fitted.text, shortened=fitted.shortened
        )

    def measure(self, text: str) -> Measurement:
        return Channel.measure(self, text)  # characters, not the segments of SMS

    # --- Content templates ----------------------------------------------------------------

    def render(self, update: UpdateView, language: str) -> Message:
        message = self._render_free_form(update, language)
        if not self.templates:
            return message
        template = _template_data(update, language, self.context.public_url)
        return replace(message, data={"template": template})

    def content(self, message: Message, target: Target) -> dict[str, Any]:
        """A template for every broadcast (residents may not have written in 24 hours); a
        private answer goes free-form (the resident just wrote) and as a template when it is
        sent again (its free-form attempt came outside the window, or failed otherwise)."""
        template = message.data.get("template")
        if template is None or (template["answer"] and target.attempt == 1):
            return {"body": message.text}
        sid, photo = self._template_sid(template)
        variables = dict(template["variables"])
        if photo:
            variables["4"] = template["photo"]
        return {"content_sid": sid, "content_variables": json.dumps(variables)}

    def _template_sid(self, template: dict[str, Any]) -> tuple[str, bool]:
        """The first configured purpose, with a photo where the update has one and a
        ``:photo`` template exists; "update" is always there (the settings check it)."""
        templates = self.templates
        for purpose in template["purposes"]:
            if template["photo"] and (sid := templates.get(purpose + PHOTO)):
                return sid, True
            if sid := templates.get(purpose):
                return sid, False
        return templates["update"], False

    def classify(self, exc: TwilioRestException, target: Target, *, template: bool) -> ChannelError:
        if exc.code == OUTSIDE_WINDOW and self.templates and not template:
            return RetryLater(f"Twilio error {exc.code}: {ERROR_NAMES[exc.code]}", retry_after=0.0)
        return classify(exc, target)

    def callback_retry_after(self, code: int, *, template: bool) -> float | None:
        if code == OUTSIDE_WINDOW and self.templates and not template:
            return 0.0  # again at once, now as a template
        return super().callback_retry_after(code, template=template)


def _template_data(update: UpdateView, language: str, public_url: str) -> dict[str, Any]:
    """The variables every template gets: {{1}} the headline, {{2}} the text (one line:
    WhatsApp refuses line breaks in variables), {{3}} the link; {{4}} a photo's path below
    the public address, for a media header ``https://<public address>/{{4}}``."""
    text = " ".join(compose_plain(update, language, title=False).split())
    lang = language if language in ("nl", "en") else "nl"
    photo = next((m.url for m in update.media if m.content_type.startswith("image/")), None)
    kind = update.kind
    purposes = ["answer"] if kind == "answer" else ([kind] if kind != "update" else [])
    return {
        "answer": kind == "answer",
        "purposes": [*purposes, update.severity, "update"],
        "variables": {
            "1": headline(update, lang) or update.incident_title,
            "2": fit(text, TEMPLATE_TEXT_MAX, "").text,
            "3": update.url,
        },
        "photo": photo.removeprefix(public_url.rstrip("/") + "/") if photo else None,
    }
