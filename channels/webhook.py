"""Signed JSON POSTs to partner systems: the configured URLs (one-to-many) and subscribers whose
address is a URL. The receiver checks ``X-Broadcast-Signature: sha256=<hex HMAC of the body>``
and de-duplicates on ``X-Broadcast-Delivery``.

Receivers on loopback, private or link-local addresses are refused (``channels.netguard``): when
an address is added, when the channel starts (the configured URLs), and at every connection, so a
name that later resolves inside is refused too; redirects are never followed. A local receiver
needs ``BROADCAST_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true``."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, field_validator

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
from channels.text import compose_plain

SIGNATURE_HEADER = "X-Broadcast-Signature"
DELIVERY_HEADER = "X-Broadcast-Delivery"


class WebhookSettings(ChannelSettings):
    urls: list[str] = []
    secret: SecretStr | None = None
    timeout_seconds: float = 10.0
    rate: float | None = None  # sends per second over all receivers; None = unlimited
    allow_private_addresses: bool = False  # true only for receivers on an intranet or loopback

    @field_validator("urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    name = "webhook"
    limits = Limits(per_second=None, concurrency=16)
    capabilities = Capabilities(one_to_many=True, per_subscriber=True)
    Settings = WebhookSettings
    settings: WebhookSettings

    def __init__(self, settings: WebhookSettings, context: ChannelContext):
        super().__init__(settings, context)
        if settings.secret is None or not settings.secret.get_secret_value():
            raise NotConfigured("BROADCAST_WEBHOOK_SECRET is not set")
        for url in settings.urls:
            self.normalize_address(url)
        if settings.rate:
            self.limits = Limits(per_second=settings.rate, concurrency=16)
        self.secret = settings.secret.get_secret_value()
        self._client: httpx.AsyncClient | None = None

    def broadcast_targets(self) -> list[str]:
        return list(self.settings.urls)

    def normalize_address(self, address: str) -> str:
        address = address.strip()
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("a webhook address must be an http(s) URL")
        if not self.settings.allow_private_addresses:
            try:
                check_url(address)
            except PrivateAddress as exc:
                raise ValueError(str(exc)) from None
        return address

    def render(self, update: UpdateView, language: str) -> Message:
        text = compose_plain(update, language)
        document = {
            "id": update.id,
            "kind": update.kind,
            "severity": update.severity,
            "language": language,
            "text": text,
            "body": update.body,
            "url": update.url,
            "incident": {"slug": update.incident_slug, "title": update.incident_title},
            "areas": list(update.areas),
            "supersedes": update.supersedes,
            "published_at": _iso(update.published_at),
            "next_update_due": _iso(update.next_update_due),
            "credit": update.credit,
            "exercise": update.exercise,
        }
        return Message(update_id=update.id, language=language, text=text, data=document)

    async def start(self) -> None:
        self._client = guarded_client(
            self.settings.timeout_seconds, allow_private=self.settings.allow_private_addresses
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(self, message: Message, target: Target) -> Receipt:
        if self._client is None:
            await self.start()
        assert self._client is not None
        body = json.dumps(message.data, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            DELIVERY_HEADER: str(target.delivery_id),
        }
        try:
            response = await self._client.post(target.address, content=body, headers=headers)
        except PrivateAddress as exc:  # refused before connecting; the address will not change
            raise PermanentFailure(str(exc)) from None
        # Every URL is a server of its own: one partner that is down or busy concerns only its
        # deliveries, never the lane (its pause, its circuit breaker) for the other partners.
        except httpx.TimeoutException as exc:
            raise RetryLater(f"timeout: {type(exc).__name__}", scope=TARGET) from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"connection failed: {type(exc).__name__}", scope=TARGET) from exc
        return _classify(response, target)


def _classify(response: httpx.Response, target: Target) -> Receipt:
    status = response.status_code
    if 200 <= status < 300:
        return Receipt(provider_id=response.headers.get("X-Request-Id"), delivered=True)
    if status in (408, 425, 429) or status >= 500:
        raise RetryLater(f"HTTP {status}", retry_after=_retry_after(response), scope=TARGET)
    if status == 410 and target.per_subscriber:
        raise RecipientGone("HTTP 410 Gone")
    raise PermanentFailure(f"HTTP {status}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
