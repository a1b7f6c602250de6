"""Mastodon: every published update becomes a status on the municipality's account.

A correction is made in the open: the original status keeps its text behind a content warning
("Gecorrigeerd, zie de reactie") and the correction is posted as a reply to it. Mastodon.py is
blocking (requests); its calls run in a worker thread, one send at a time (``concurrency=1``):
statuses stay in order and the client's rate-limit bookkeeping is never shared between threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any, Literal

from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import Field, SecretStr

from channels.base import (
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSettings,
    Limits,
    Measurement,
    Media,
    Message,
    Receipt,
    Target,
    UpdateView,
)
from channels.errors import (
    UNREADABLE_ANSWER,
    NotConfigured,
    PermanentFailure,
    RetryLater,
    unreadable_answer,
)
from channels.text import MASTODON_LIMIT, compose_plain, fit_mastodon, mastodon_length

log = logging.getLogger(__name__)

ACCOUNT_TARGET = "account"
MAX_MEDIA = 4  # Mastodon's limit per status
MAX_MEDIA_BYTES = 16 * 1024 * 1024  # Mastodon's default image size limit
MEDIA_PROCESSING_WAIT = 2.0  # seconds: v2 uploads are processed asynchronously
NOTICES = {  # the content warning put on a superseded status
    "correction": {"nl": "Gecorrigeerd, zie de reactie", "en": "Corrected, see the reply"},
    "retraction": {"nl": "Ingetrokken, zie de reactie", "en": "Retracted, see the reply"},
}


class MastodonSettings(ChannelSettings):
    url: str | None = None  # BROADCAST_MASTODON_URL, the instance
    token: SecretStr | None = None  # BROADCAST_MASTODON_TOKEN, with write:statuses, write:media
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    timeout_seconds: float = Field(10.0, gt=0)


class MastodonChannel(Channel):
    name = "mastodon"
    # Mastodon allows 300 requests per 5 minutes per account; a status with photos is a few.
    limits = Limits(max_chars=MASTODON_LIMIT, per_second=1.0, concurrency=1, media=True)
    capabilities = Capabilities(one_to_many=True, can_edit=True)
    Settings = MastodonSettings
    settings: MastodonSettings
    previewed = True

    def __init__(self, settings: MastodonSettings, context: ChannelContext):
        super().__init__(settings, context)
        token = settings.token.get_secret_value().strip() if settings.token else ""
        url = (settings.url or "").strip()
        if not url or not token:
            raise NotConfigured("BROADCAST_MASTODON_URL and BROADCAST_MASTODON_TOKEN are not set")
        # "none": no version request at start-up (an instance that is down must not keep the
        # service from starting); "throw": the core, not the client, decides when to retry.
        self.api = Mastodon(
            access_token=token,
            api_base_url=url.rstrip("/"),
            version_check_mode="none",
            ratelimit_method="throw",
            request_timeout=settings.timeout_seconds,
        )
        # Uploads not yet attached to a status, so a retry does not upload again.
        self._uploaded: dict[tuple[int, str], str] = {}

    def broadcast_targets(self) -> list[str]:
        return [ACCOUNT_TARGET]

    def render(self, update: UpdateView, language: str) -> Message:
        fitted = fit_mastodon(compose_plain(update, language), update.url, MASTODON_LIMIT)
        return Message(
            update_id=update.id,
            language=language,
            text=fitted.text,
            shortened=fitted.shortened,
            media=update.media[:MAX_MEDIA],
            data={"kind": update.kind, "url": update.url},
        )

    def measure(self, text: str) -> Measurement:
        """As Mastodon validates a post: every link counts as 23 characters."""
        return Measurement(mastodon_length(text), MASTODON_LIMIT)

    async def send(self, message: Message, target: Target) -> Receipt:
        try:
            status = await asyncio.to_thread(self._publish, message, target)
        except MastodonRatelimitError as exc:
            raise RetryLater("Mastodon rate limit", retry_after=self._reset_in()) from exc
        except MastodonNetworkError as exc:
            raise RetryLater(f"Mastodon unreachable: {type(exc).__name__}") from exc
        except MastodonServerError as exc:
            raise RetryLater(f"Mastodon HTTP {_status(exc)}") from exc
        except MastodonUnauthorizedError as exc:
            raise PermanentFailure("Mastodon HTTP 401: the access token is invalid") from exc
        except MastodonAPIError as exc:
            raise _api_error(exc) from exc
        except MastodonError as exc:  # illegal argument, unsupported version, unreadable file
            raise PermanentFailure(f"Mastodon: {exc}") from exc
        except UNREADABLE_ANSWER as exc:
            raise unreadable_answer("Mastodon", exc) from exc
        if not isinstance(status, dict) or not status.get("id"):
            # Retrying is safe: the post carries an idempotency key.
            raise RetryLater("Mastodon answered without a status id")
        for media in message.media:
            self._uploaded.pop((_update_id(message), media.url), None)
        return Receipt(provider_id=str(status["id"]), delivered=True)

    # --- the blocking part, in a worker thread ------------------------------------------------

    def _publish(self, message: Message, target: Target) -> Any:
        reply_to = None
        if target.original_message_id:
            reply_to = self._mark_superseded(target.original_message_id, message)
        media_ids = [self._upload(_update_id(message), media) for media in message.media]
        return self.api.status_post(
            message.text,
            in_reply_to_id=reply_to,
            media_ids=[m for m in media_ids if m] or None,
            visibility=self.settings.visibility,
            language=message.language,
            # The same delivery posts once, even when a timeout hid that the first try worked.
            idempotency_key=f"broadcast-{target.delivery_id}",
        )

    def _mark_superseded(self, status_id: str, message: Message) -> str | None:
        """Put the notice on the original status; its id to reply to, None when it is gone."""
        try:
            original = self.api.status(status_id)
        except MastodonNotFoundError:
            return None  # deleted by hand: the correction stands on its own
        kind = message.data.get("kind")
        notices = NOTICES[kind if isinstance(kind, str) and kind in NOTICES else "correction"]
        notice = notices.get(message.language, notices["nl"])
        if original.get("spoiler_text") != notice:  # a retry must not edit it twice
            # The notice counts toward the 500 characters, so the text may need fitting again.
            limit = MASTODON_LIMIT - mastodon_length(notice)
            text = fit_mastodon(plain_text(original["content"]), message.data["url"], limit).text
            media = [m["id"] for m in original.get("media_attachments") or []]
            # An edit replaces the attachments with media_ids: leaving them out drops photos.
            self.api.status_update(status_id, text, spoiler_text=notice, media_ids=media or None)
        return status_id

    def _upload(self, update_id: int, media: Media) -> str | None:
        key = (update_id, media.url)
        if key not in self._uploaded:
            data = self._download(update_id, media)
            if data is None:
                return None
            uploaded = self.api.media_post(
                data, mime_type=media.content_type, description=media.alt or None
            )
            self._uploaded[key] = str(uploaded["id"])
        return self._uploaded[key]

    def _download(self, update_id: int, media: Media) -> bytes | None:
        """The photo's bytes; None when it is gone for good or too big (the text matters more)."""
        try:
            with urllib.request.urlopen(media.url, timeout=self.settings.timeout_seconds) as got:
                data = got.read(MAX_MEDIA_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (408, 429):
                raise RetryLater(f"media download: HTTP {exc.code}") from exc
            log.warning("a photo of update %d is left out: HTTP %d", update_id, exc.code)
            return None
        except OSError as exc:  # URLError, timeouts, refused connections
            raise RetryLater(f"media download failed: {type(exc).__name__}") from exc
        if len(data) > MAX_MEDIA_BYTES:
            log.warning("a photo of update %d is left out: over 16 MB", update_id)
            return None
        return data

    def _reset_in(self) -> float | None:
        """Seconds until the rate-limit window resets, from the last X-RateLimit-Reset."""
        reset = getattr(self.api, "ratelimit_reset", None)
        return max(1.0, float(reset) - time.time()) if reset else None


def _update_id(message: Message) -> int:
    """Photos come with a published update only, never with a direct message."""
    assert message.update_id is not None
    return message.update_id


def _status(exc: MastodonAPIError) -> int | None:
    """Mastodon.py raises ``(message, status code, reason, error text)``."""
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _api_error(exc: MastodonAPIError) -> RetryLater | PermanentFailure:
    status = _status(exc)
    error = str(exc.args[3]) if len(exc.args) > 3 else str(exc)
    if status == 422 and "processing" in error:  # uploaded media not ready yet
        return RetryLater("Mastodon: media still processing", retry_after=MEDIA_PROCESSING_WAIT)
    if status in (408, 429):
        return RetryLater(f"Mastodon HTTP {status}")
    return PermanentFailure(f"Mastodon HTTP {status}: {error}")


class _PlainText(HTMLParser):
    """A status's HTML back to the text that was posted: paragraphs, line breaks, and links
    as their address (Mastodon shortens a link's visible text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")
        elif tag == "a" and "mention" not in (attributes.get("class") or ""):
            self._href = attributes.get("href") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.parts.append(self._href)
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._href is None:  # a link's text is replaced by its address
            self.parts.append(data)


def plain_text(html: str) -> str:
    parser = _PlainText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()
