"""Facebook Page: every published update becomes a post on the municipality's Page.

The post carries the update's link (``/{page-id}/feed`` with ``link``); an update with photos
goes through ``/{page-id}/photos`` (one photo: published with its caption; more: uploaded
unpublished and attached to one feed post). A correction **edits** the original post to
"Gecorrigeerd: " and the new text (the Graph API offers no strike-through) and adds a comment
that links the correction; a retraction edits it to "Ingetrokken: " likewise.

httpx, not an SDK: the Graph API is four form POSTs, Meta's own Python SDK
(facebook-business) is for the Marketing API and blocking, and facebook-sdk has had no release
since 2018. httpx is already a dependency and async.

Errors (the Graph API answers ``{"error": {"code", "error_subcode", "type", "message"}}``):
4, 17, 32, 613 and 80001 are rate limits (retry later, for the estimated time the usage
headers announce); 190 is an expired or revoked token (the channel stops sending until an
operator gives it a new one: ``CredentialsRevoked``); 100 and the other refusals fail for
good; 1, 2 and 5xx are Meta's own trouble (retry later).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from pydantic import Field, SecretStr

from channels.base import (
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
    UNREADABLE_ANSWER,
    CredentialsRevoked,
    NotConfigured,
    PermanentFailure,
    RetryLater,
    unreadable_answer,
)
from channels.text import FittedText, compose_plain, fit, utf16_len

log = logging.getLogger(__name__)

GRAPH_API_URL = "https://graph.facebook.com/v21.0"
PAGE_TARGET = "page"
FACEBOOK_LIMIT = 63206  # characters in a post's message
MAX_PHOTOS = 10  # photos attached to one post through attached_media
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error", "service temporarily unavailable"
EXPIRED_TOKEN = 190
OBJECT_MISSING_SUBCODE = 33  # code 100: the post to edit does not exist (deleted by hand)
DEFAULT_BACK_OFF = 60.0  # seconds, when a rate-limit answer estimates no time
PREFIXES = {  # put before the text of a superseded post
    "correction": {"nl": "Gecorrigeerd: ", "en": "Corrected: "},
    "retraction": {"nl": "Ingetrokken: ", "en": "Retracted: "},
}
COMMENTS = {  # the comment under a superseded post, linking the update that superseded it
    "correction": {"nl": "Correctie: {url}", "en": "Correction: {url}"},
    "retraction": {"nl": "Ingetrokken: {url}", "en": "Retracted: {url}"},
}
USAGE_HEADERS = ("x-business-use-case-usage", "x-page-usage", "x-app-usage")


class FacebookSettings(ChannelSettings):
    page_id: str | None = None  # BROADCAST_FACEBOOK_PAGE_ID
    page_token: SecretStr | None = None  # BROADCAST_FACEBOOK_PAGE_TOKEN, a Page access token
    api_url: str = GRAPH_API_URL  # BROADCAST_FACEBOOK_API_URL, with the version
    timeout_seconds: float = Field(10.0, gt=0)


class _GraphError(Exception):
    def __init__(self, status: int, code: int | None, subcode: int | None, text: str):
        super().__init__(text)
        self.status, self.code, self.subcode, self.text = status, code, subcode, text
        self.retry_after: float | None = None


class FacebookChannel(Channel):
    name = "facebook"
    title = "Facebook"
    # Posting is paced well below the Page's Business Use Case allowance (calls per 24 h grow
    # with the Page's engaged users); one at a time keeps the posts in order.
    limits = Limits(max_chars=FACEBOOK_LIMIT, per_second=1.0, concurrency=1, media=True)
    capabilities = Capabilities(one_to_many=True, can_edit=True)
    Settings = FacebookSettings
    settings: FacebookSettings
    previewed = True

    def __init__(self, settings: FacebookSettings, context: ChannelContext):
        super().__init__(settings, context)
        token = settings.page_token.get_secret_value().strip() if settings.page_token else ""
        page_id = (settings.page_id or "").strip()
        if not page_id or not token:
            raise NotConfigured(
                "BROADCAST_FACEBOOK_PAGE_ID and BROADCAST_FACEBOOK_PAGE_TOKEN are not set"
            )
        self.page_id = page_id
        self.http = httpx.AsyncClient(
            base_url=settings.api_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {token}"},  # never in a URL that may be logged
            timeout=settings.timeout_seconds,
        )
        self.revoked: str | None = None  # why the token was refused; nothing is sent after it
        # Photos uploaded unpublished and comments made, so that a retry does not repeat them.
        self._uploaded: dict[tuple[int, str], str] = {}
        self._commented: set[int] = set()

    def broadcast_targets(self) -> list[str]:
        return [PAGE_TARGET]

    def render(self, update: UpdateView, language: str) -> Message:
        text = compose_plain(update, language)
        fitted = fit(text, FACEBOOK_LIMIT, update.url, measure=utf16_len)
        if not fitted.shortened:  # the short link goes with every post, also under a photo
            text = f"{text}\n\n{update.url}" if update.url else text
            if utf16_len(text) > FACEBOOK_LIMIT:
                fitted = fit(text, FACEBOOK_LIMIT, update.url, measure=utf16_len)
            else:
                fitted = FittedText(text)
        return Message(
            update_id=update.id,
            language=language,
            text=fitted.text,
            shortened=fitted.shortened,
            media=update.media[:MAX_PHOTOS],
            data={"kind": update.kind, "url": update.url},
        )

    def measure(self, text: str) -> Measurement:
        return Measurement(utf16_len(text), FACEBOOK_LIMIT)

    async def send(self, message: Message, target: Target) -> Receipt:
        if self.revoked:
            raise CredentialsRevoked(self.revoked)
        try:
            post_id = await self._publish(message, target)
        except _GraphError as exc:
            raise self._classify(exc) from exc
        except httpx.TimeoutException as exc:
            raise RetryLater(f"Facebook timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"Facebook unreachable: {type(exc).__name__}") from exc
        except UNREADABLE_ANSWER as exc:
            raise unreadable_answer("Facebook", exc) from exc
        for media in message.media:
            self._uploaded.pop((_update_id(message), media.url), None)
        self._commented.discard(target.delivery_id)
        return Receipt(provider_id=post_id, delivered=True)

    async def close(self) -> None:
        await self.http.aclose()

    # --- the calls --------------------------------------------------------------------------

    async def _publish(self, message: Message, target: Target) -> str:
        if target.original_message_id:
            edited = await self._supersede(target.original_message_id, message, target)
            if edited:
                return target.original_message_id
        if len(message.media) == 1:
            photo = message.media[0]
            answer = await self._post(
                f"{self.page_id}/photos",
                {"url": photo.url, "caption": message.text, "alt_text_custom": photo.alt or None},
            )
            return _id(answer, "post_id")
        fields: dict[str, Any] = {"message": message.text}
        if message.media:
            for index, media in enumerate(message.media):
                photo_id = await self._upload(_update_id(message), media)
                fields[f"attached_media[{index}]"] = json.dumps({"media_fbid": photo_id})
        elif url := message.data.get("url"):
            fields["link"] = url  # the Page shows the link's preview card
        return _id(await self._post(f"{self.page_id}/feed", fields), "id")

    async def _supersede(self, post_id: str, message: Message, target: Target) -> bool:
        """Edit the original post and comment the link; False when the post is gone."""
        kind = message.data.get("kind")
        kind = kind if isinstance(kind, str) and kind in PREFIXES else "correction"
        language = message.language if message.language in ("nl", "en") else "nl"
        text = PREFIXES[kind][language] + message.text
        if utf16_len(text) > FACEBOOK_LIMIT:
            text = fit(text, FACEBOOK_LIMIT, message.data.get("url") or "", utf16_len).text
        try:
            await self._post(post_id, {"message": text})
        except _GraphError as exc:
            if exc.code == 100 and exc.subcode == OBJECT_MISSING_SUBCODE:
                return False  # deleted by hand: the correction goes out as a post of its own
            raise
        if target.delivery_id not in self._commented and (url := message.data.get("url")):
            comment = COMMENTS[kind][language].format(url=url)
            await self._post(f"{post_id}/comments", {"message": comment})
            self._commented.add(target.delivery_id)
        return True

    async def _upload(self, update_id: int, media: Any) -> str:
        key = (update_id, media.url)
        if key not in self._uploaded:
            answer = await self._post(
                f"{self.page_id}/photos",
                {"url": media.url, "published": "false", "alt_text_custom": media.alt or None},
            )
            self._uploaded[key] = _id(answer, "id")
        return self._uploaded[key]

    async def _post(self, path: str, fields: dict[str, Any]) -> dict[str, Any]:
        data = {key: value for key, value in fields.items() if value is not None}
        response = await self.http.post(path, data=data)
        if response.is_success:
            answer = response.json()
            if not isinstance(answer, dict):
                raise TypeError("answer is not an object")
            return answer
        raise _graph_error(response)

    # --- classification -------------------------------------------------------------------

    def _classify(self, exc: _GraphError) -> RetryLater | PermanentFailure:
        if exc.code in RATE_LIMIT_CODES:
            return RetryLater(f"Facebook rate limit (code {exc.code})", retry_after=exc.retry_after)
        if exc.code == EXPIRED_TOKEN:
            self.revoked = (
                f"Facebook refused the Page token (code 190, subcode {exc.subcode}): "
                "set a new BROADCAST_FACEBOOK_PAGE_TOKEN"
            )
            log.error("the facebook channel stops sending: %s", self.revoked)
            return CredentialsRevoked(self.revoked)
        if exc.status >= 500 or exc.code in TRANSIENT_CODES or exc.status in (408, 429):
            return RetryLater(f"Facebook HTTP {exc.status} (code {exc.code})")
        return PermanentFailure(f"Facebook HTTP {exc.status} (code {exc.code}): {exc.text}")


def _graph_error(response: httpx.Response) -> _GraphError:
    try:
        error = response.json().get("error") or {}
        code, subcode = error.get("code"), error.get("error_subcode")
        text = str(error.get("message") or "")[:200]
    except (ValueError, AttributeError):
        code, subcode, text = None, None, ""
    graph = _GraphError(
        response.status_code,
        code if isinstance(code, int) else None,
        subcode if isinstance(subcode, int) else None,
        text,
    )
    graph.retry_after = _regain_access(response) if graph.code in RATE_LIMIT_CODES else None
    return graph


def _regain_access(response: httpx.Response) -> float:
    """Seconds until the limit lifts: ``estimated_time_to_regain_access`` (minutes) in the
    Business Use Case usage header; without one, a fixed back-off."""
    minutes = 0.0
    for header in USAGE_HEADERS:
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        entries: list[dict[str, Any]] = []
        if isinstance(usage, dict) and "call_count" in usage:  # X-App-Usage, X-Page-Usage
            entries.append(usage)
        elif isinstance(usage, dict):  # Business Use Case: {page id: [{type, ...}, ...]}
            for value in usage.values():
                if isinstance(value, list):
                    entries.extend(v for v in value if isinstance(v, dict))
        for entry in entries:
            estimate = entry.get("estimated_time_to_regain_access")
            if isinstance(estimate, int | float):
                minutes = max(minutes, float(estimate))
    return minutes * 60 if minutes > 0 else DEFAULT_BACK_OFF


def _id(answer: dict[str, Any], key: str) -> str:
    value = answer[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"no {key} in the answer")
    return value


def _update_id(message: Message) -> int:
    assert message.update_id is not None  # photos come with a published update only
    return message.update_id
