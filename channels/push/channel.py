"""Notifications to residents' browsers through their push services (RFC 8030).

A subscriber's address is the browser's subscription (``crypto.Subscription.address``: the
endpoint and its keys as one line of JSON). Each update is one POST to the endpoint: the JSON
``{"title", "body", "url", ...}`` encrypted for the browser (``Content-Encoding: aes128gcm``,
RFC 8291), a VAPID ``Authorization`` (RFC 8292), ``TTL`` and ``Urgency`` from the severity.

Endpoints must be ``https`` on public addresses (``channels.netguard``, checked when a
subscription is added and at every connection); ``BROADCAST_PUSH_ALLOW_PRIVATE_ADDRESSES=true``
lifts that for local testing and then also accepts plain ``http``. Redirects are never followed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, SecretStr, field_validator

from channels.base import (
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSettings,
    Limits,
    Message,
    Receipt,
    Target,
    UpdateView,
)
from channels.errors import TARGET, NotConfigured, PermanentFailure, RecipientGone, RetryLater
from channels.netguard import PrivateAddress, check_url, guarded_client
from channels.push import crypto
from channels.text import compose_plain, fit, headline

MAX_BODY_CHARS = 300  # what a notification shows of the text; the link opens the whole update
MAX_TITLE_CHARS = 120
MAX_ADDRESS_CHARS = 500  # a subscriber address column's length
DEFAULT_TITLE = {"nl": "Crisisbericht", "en": "Crisis update"}

# How long a push service keeps a message for a browser that is offline, and how urgently it
# wakes the device (RFC 8030 section 5.3): a warning is worth waking a phone for, news is not.
TTL_SECONDS = {
    "info": 6 * 3600,
    "advisory": 12 * 3600,
    "warning": 24 * 3600,
    "emergency": 24 * 3600,
}
URGENCY = {"info": "low", "advisory": "normal", "warning": "high", "emergency": "high"}


class PushSettings(ChannelSettings):
    env_names: ClassVar[dict[str, str]] = {
        "vapid_private_key": "BROADCAST_VAPID_PRIVATE_KEY",
        "vapid_subject": "BROADCAST_VAPID_SUBJECT",
    }
    vapid_private_key: SecretStr | None = None  # BROADCAST_VAPID_PRIVATE_KEY
    vapid_subject: str | None = None  # BROADCAST_VAPID_SUBJECT: mailto: or https:
    allow_private_addresses: bool = False  # true only to test against a local push service
    timeout_seconds: float = 10.0

    @field_validator("timeout_seconds")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0")
        return value


class PushKey(BaseModel):
    public_key: str  # base64url of the 65-byte uncompressed P-256 point


class PushChannel(Channel):
    name = "push"
    title = "Web push"
    settings_prefix = "PUSH"
    # Every endpoint is one browser at one push service (FCM, Mozilla, Apple...): a refusal
    # concerns that subscription (see _classify), so the lane itself needs no pace.
    limits = Limits(max_chars=MAX_BODY_CHARS, per_second=None, concurrency=32)
    capabilities = Capabilities(per_subscriber=True)
    Settings = PushSettings
    settings: PushSettings

    def __init__(
        self,
        settings: PushSettings,
        context: ChannelContext,
        clock: Callable[[], float] = crypto.wall_clock,
    ):
        super().__init__(settings, context)
        key = settings.vapid_private_key.get_secret_value() if settings.vapid_private_key else ""
        if not key.strip():
            raise NotConfigured("BROADCAST_VAPID_PRIVATE_KEY is not set")
        subject = (settings.vapid_subject or "").strip()
        if not subject:
            raise NotConfigured("BROADCAST_VAPID_SUBJECT is not set")
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError("BROADCAST_VAPID_SUBJECT must be a mailto: or https: URL")
        self.signer = crypto.VapidSigner(crypto.private_key_from_raw(key), subject, clock)
        self._client: httpx.AsyncClient | None = None

    @property
    def public_key(self) -> str:
        """The application server key browsers subscribe with (``GET /api/v1/push/key``)."""
        return self.signer.public_key

    @classmethod
    def new_keys(cls) -> list[str]:
        """A new VAPID key pair as the lines of a settings file (``broadcast push keys``)."""
        private, public = crypto.new_key_pair()
        return [
            f"BROADCAST_VAPID_PRIVATE_KEY={private}",
            f"# public key (GET /api/v1/push/key answers it): {public}",
        ]

    def router(self) -> APIRouter:
        router = APIRouter(tags=["sign-up"])
        key = PushKey(public_key=self.public_key)

        @router.get(
            "/api/v1/push/key",
            response_model=PushKey,
            description="The VAPID public key browsers subscribe with "
            "(`applicationServerKey` of `pushManager.subscribe`). 404 while web push is off.",
        )
        def push_key() -> PushKey:
            return key

        return router

    def normalize_address(self, address: str) -> str:
        subscription = crypto.parse_address(address)
        self.check_endpoint(subscription.endpoint)
        stored = subscription.address
        if len(stored) > MAX_ADDRESS_CHARS:
            raise ValueError("the push endpoint is too long")
        return stored

    def check_endpoint(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        schemes = ("https", "http") if self.settings.allow_private_addresses else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError("a push endpoint must be an https URL")
        if not self.settings.allow_private_addresses:
            try:
                check_url(endpoint)
            except PrivateAddress as exc:
                raise ValueError(str(exc)) from None

    def render(self, update: UpdateView, language: str) -> Message:
        lang = language if language in DEFAULT_TITLE else "nl"
        title = headline(update, lang) or update.incident_title or DEFAULT_TITLE[lang]
        title = fit(title, MAX_TITLE_CHARS, "").text
        body = fit(compose_plain(update, lang, title=False), MAX_BODY_CHARS, update.url)
        data = {
            "title": title,
            "body": body.text,
            "url": update.url,
            "severity": update.severity,
            "kind": update.kind,
            "id": update.id,
            "lang": lang,
            # A later update of the same incident replaces the notification instead of piling up.
            "tag": f"incident-{update.incident_slug}" if update.incident_slug else f"u-{update.id}",
        }
        return Message(
            update_id=update.id, language=lang, text=body.text, shortened=body.shortened, data=data
        )

    async def start(self) -> None:
        self._client = guarded_client(
            self.settings.timeout_seconds, allow_private=self.settings.allow_private_addresses
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, message: Message, target: Target) -> Receipt:
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            subscription = crypto.parse_address(target.address)
            self.check_endpoint(subscription.endpoint)
        except ValueError as exc:
            raise PermanentFailure(str(exc)) from None
        data = message.data or {"title": "", "body": message.text, "url": ""}
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        severity = str(data.get("severity", "advisory"))
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "aes128gcm",
            "Authorization": self.signer.authorization(subscription.endpoint),
            "TTL": str(TTL_SECONDS.get(severity, TTL_SECONDS["advisory"])),
            "Urgency": URGENCY.get(severity, "normal"),
        }
        if tag := data.get("tag"):
            headers["Topic"] = _topic(str(tag))
        body = crypto.encrypt(payload, subscription)
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except PrivateAddress as exc:  # refused before connecting
            raise PermanentFailure(str(exc)) from None
        except httpx.TimeoutException as exc:
            raise RetryLater(f"timeout: {type(exc).__name__}", scope=TARGET) from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"connection failed: {type(exc).__name__}", scope=TARGET) from exc
        return _classify(response)


def _topic(tag: str) -> str:
    """RFC 8030 ``Topic``: at most 32 characters of the base64url alphabet. A newer message
    with the same topic replaces one the push service still holds for an offline browser."""
    return crypto.b64url(tag.encode())[:32]


def _classify(response: httpx.Response) -> Receipt:
    status = response.status_code
    if 200 <= status < 300:
        # The push service took the message (201 Created, Location: the message's URL); it
        # reports nothing later, so this is final.
        return Receipt(provider_id=response.headers.get("Location"), delivered=True)
    # One push service busy or down concerns its own subscriptions only; the lane (its pause,
    # its circuit breaker) carries on with the browsers at the other services.
    if status in (408, 425, 429) or status >= 500:
        raise RetryLater(f"HTTP {status}", retry_after=_retry_after(response), scope=TARGET)
    if status in (404, 410):  # the browser unsubscribed or the subscription expired
        raise RecipientGone(f"HTTP {status}: the subscription is gone")
    raise PermanentFailure(f"HTTP {status}")  # 400 malformed, 403 VAPID refused, 413 too large


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.replace(".", "", 1).isdigit() else None
