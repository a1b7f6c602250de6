"""Mastodon REST API stand-in (statuses, media, instance, verify_credentials) for Mastodon.py.

    with FakeMastodon() as fake:
        api = Mastodon(access_token=fake.access_token, api_base_url=fake.url,
                       version_check_mode="created", ratelimit_method="throw")
        fake.state.rate_limit = RateWindow(limit=3, period=60)  # default 300 per 5 minutes
        fake.state.media_pending_polls = 1      # GET /api/v1/media/:id answers 206 once first
        fake.state.faults.fail_next(1, 503)     # or hang_next(1, seconds)
        ... fake.state.posts / edits / media / statuses / rate_limited hold what happened.

The instance endpoints report a 4.5 version and ``api_versions`` so Mastodon.py's version
check (any ``version_check_mode``) accepts status_post / status_update / media_post (v2).
Every response carries X-RateLimit-Limit/Remaining/Reset like rack-attack's (Reset as ISO 8601
with microseconds); an exhausted window answers 429 ``{"error": "Too many requests"}``.
Text length is counted as Mastodon's StatusLengthValidator does: spoiler + text, each URL as
23, remote mentions as their local part, in grapheme clusters (approximated with the stdlib:
combining marks, variation selectors, skin tones, ZWJ sequences and flag pairs join).
Status ``content`` is the escaped text in ``<p>``; links are not rendered as anchors. An edit
(PUT) replaces the attachments with its ``media_ids``, so omitting them drops the media.
"""

from __future__ import annotations

import html
import itertools
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeServer, Faults, read_params

URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
REMOTE_MENTION_RE = re.compile(r"(?<![\w/@])@(\w+)@[\w.-]+\w")
MAX_MEDIA = 4
Handler = Callable[[Request, "MastodonState", dict[str, Any], dict[str, Any]], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status, self.error = status, error


@dataclass
class RateWindow:
    """rack-attack style fixed window, anchored at the first request so tests are stable."""

    limit: int = 300
    period: float = 300.0
    started: float = 0.0
    count: int = 0
    # Used up when the first request comes, whenever that is: a window used up when the test
    # starts could end on a slow machine before the request that should meet it.
    used_up: bool = False

    def hit(self, now: float) -> bool:
        if self.used_up:
            self.used_up, self.started, self.count = False, now, self.limit
        if now >= self.started + self.period:
            self.started, self.count = now, 0
        self.count += 1
        return self.count <= self.limit

    def headers(self) -> dict[str, str]:
        reset = datetime.fromtimestamp(self.started + self.period, UTC)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.count)),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }


@dataclass
class MastodonState:
    access_token: str = "fake-mastodon-access-token"
    domain: str = "mastodon.example"
    version: str = "4.5.7"
    api_version: int = 7
    max_characters: int = 500
    url_length: int = 23
    rate_limit: RateWindow = field(default_factory=RateWindow)
    media_pending_polls: int = 0
    faults: Faults = field(default_factory=Faults)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)  # accepted POST params + key
    edits: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    idempotency: dict[str, str] = field(default_factory=dict)  # key -> status id
    _pending: dict[str, int] = field(default_factory=dict, repr=False)
    _seq: itertools.count = field(default_factory=itertools.count, repr=False)

    def new_id(self) -> str:
        # Snowflake-like: milliseconds << 16 plus a sequence, as Mastodon's ids are.
        return str((int(time.time() * 1000) << 16) + next(self._seq) % 65536)

    def account(self) -> dict[str, Any]:
        base = f"https://{self.domain}"
        return {
            "id": "109348324923847234",
            "username": "gemeente",
            "acct": "gemeente",
            "display_name": "Gemeente Crisiscommunicatie",
            "locked": False,
            "bot": True,
            "discoverable": True,
            "group": False,
            "created_at": "2022-11-14T00:00:00.000Z",
            "note": "",
            "url": f"{base}/@gemeente",
            "uri": f"{base}/users/gemeente",
            "avatar": f"{base}/avatars/original/missing.png",
            "header": "",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": len(self.statuses),
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }


class FakeMastodon(FakeServer):
    def __init__(self, state: MastodonState | None = None) -> None:
        self.state = state or MastodonState()
        self.access_token = self.state.access_token
        super().__init__(create_app(self.state))


def create_app(state: MastodonState) -> Starlette:
    def route(path: str, handler: Handler, methods: list[str], auth: bool = True) -> list[Route]:
        wrapped = _endpoint(handler, auth)
        # Mastodon.py asks for "/api/v1/instance/"; Rails accepts both spellings.
        return [Route(p, wrapped, methods=methods) for p in (path, path + "/")]

    routes = [
        *route("/api/v1/instance", instance_v1, ["GET"], auth=False),
        *route("/api/v2/instance", instance_v2, ["GET"], auth=False),
        *route("/api/v1/accounts/verify_credentials", verify_credentials, ["GET"]),
        *route("/api/v1/statuses", create_status, ["POST"]),
        *route("/api/v1/statuses/{id}", get_status, ["GET"]),
        *route("/api/v1/statuses/{id}", edit_status, ["PUT"]),
        *route("/api/v2/media", upload_media, ["POST"]),
        *route("/api/v1/media/{id}", get_media, ["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.mastodon = state
    app.state.faults = state.faults
    return app


def _endpoint(handler: Handler, auth: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: MastodonState = request.app.state.mastodon
        state.requests.append((request.method, request.url.path))
        # rack-attack runs before the app: failing and unauthenticated calls use up the window.
        allowed = state.rate_limit.hit(time.time())
        status = await state.faults.apply()
        if status is not None:
            return _server_error(status, state)
        if not allowed:
            state.rate_limited.append({"path": request.url.path, "at": time.time()})
            return _with_limits(JSONResponse({"error": "Too many requests"}, 429), state)
        try:
            if auth and request.headers.get("authorization") != f"Bearer {state.access_token}":
                raise ApiError(401, "The access token is invalid")
            params, files = await read_params(request)
            response = await handler(request, state, params, files)
        except ApiError as exc:
            response = JSONResponse({"error": exc.error}, exc.status)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = (
                    'Bearer realm="Doorkeeper", error="invalid_token", '
                    'error_description="The access token is invalid"'
                )
        return _with_limits(response, state)

    return endpoint


def _with_limits(response: Response, state: MastodonState) -> Response:
    response.headers.update(state.rate_limit.headers())
    return response


def _server_error(status: int, state: MastodonState) -> Response:
    if status in (502, 504):  # the reverse proxy answers these itself, without rate headers
        return Response(
            f"<html><body><h1>{status} Bad Gateway</h1></body></html>",
            status,
            media_type="text/html",
        )
    return _with_limits(
        JSONResponse(
            {"error": "There was a temporary problem serving your request, please try again"},
            status,
        ),
        state,
    )


# --- instance and account -------------------------------------------------------------------


async def instance_v1(request: Request, state: MastodonState, *_: Any) -> Response:
    return JSONResponse(
        {
            "uri": state.domain,
            "title": "Test instance",
            "short_description": "",
            "description": "",
            "email": f"admin@{state.domain}",
            "version": state.version,
            "urls": {"streaming_api": f"wss://{state.domain}"},
            "languages": ["nl", "en"],
            "registrations": False,
            "approval_required": True,
            "invites_enabled": False,
            "stats": {"user_count": 1, "status_count": len(state.statuses), "domain_count": 1},
            "configuration": {"statuses": _status_config(state)},
        }
    )


async def instance_v2(request: Request, state: MastodonState, *_: Any) -> Response:
    return JSONResponse(
        {
            "domain": state.domain,
            "title": "Test instance",
            "version": state.version,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "",
            "usage": {"users": {"active_month": 1}},
            "thumbnail": None,
            "languages": ["nl", "en"],
            "api_versions": {"mastodon": state.api_version},
            "configuration": {
                "urls": {"streaming": f"wss://{state.domain}"},
                "statuses": _status_config(state),
                "media_attachments": {
                    "supported_mime_types": [
                        "image/jpeg",
                        "image/png",
                        "image/gif",
                        "image/webp",
                        "video/mp4",
                    ],
                    "image_size_limit": 16777216,
                    "description_limit": 1500,
                },
            },
            "registrations": {"enabled": False, "approval_required": True, "message": None},
            "contact": {"email": f"admin@{state.domain}", "account": state.account()},
            "rules": [],
        }
    )


def _status_config(state: MastodonState) -> dict[str, int]:
    return {
        "max_characters": state.max_characters,
        "max_media_attachments": MAX_MEDIA,
        "characters_reserved_per_url": state.url_length,
    }


async def verify_credentials(request: Request, state: MastodonState, *_: Any) -> Response:
    source = {"privacy": "public", "sensitive": False, "language": "nl", "note": "", "fields": []}
    return JSONResponse({**state.account(), "source": source})


# --- statuses -------------------------------------------------------------------------------


def countable_length(text: str, spoiler: str = "", url_length: int = 23) -> int:
    text = URL_RE.sub("x" * url_length, text)
    return graphemes(spoiler + REMOTE_MENTION_RE.sub(r"@\1", text))


def graphemes(text: str) -> int:
    count, previous, flags = 0, "", 0
    for ch in text:
        code = ord(ch)
        joins = (
            previous == "\u200d"
            or ch == "\u200d"
            or (previous == "\r" and ch == "\n")
            or unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF
        )
        flags = flags + 1 if 0x1F1E6 <= code <= 0x1F1FF else 0
        if not joins and not (flags and flags % 2 == 0):
            count += 1
        previous = ch
    return count


def _validate(state: MastodonState, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Mastodon's checks for a new or edited status; returns the attached media."""
    text, media_ids = str(params.get("status") or ""), _list(params, "media_ids")
    if not text.strip() and not media_ids:
        raise ApiError(422, "Validation failed: Text can't be blank")
    spoiler = str(params.get("spoiler_text") or "")
    if countable_length(text, spoiler, state.url_length) > state.max_characters:
        raise ApiError(
            422, f"Validation failed: Text character limit of {state.max_characters} exceeded"
        )
    if len(media_ids) > MAX_MEDIA:
        raise ApiError(422, "Cannot attach more than 4 files")
    missing = [m for m in media_ids if m not in state.media]
    if missing:
        raise ApiError(
            422, f"Media {', '.join(missing)} not found or already attached to another post"
        )
    if any(state._pending.get(m) for m in media_ids):
        raise ApiError(
            422, "Cannot attach files that have not finished processing. Try again in a moment!"
        )
    return [_public(_processed(state.media[m])) for m in media_ids]


def _list(params: dict[str, Any], name: str) -> list[str]:
    value = params.get(f"{name}[]", params.get(name)) or []
    return [str(v) for v in ([value] if isinstance(value, str | int) else value)]


def _content(text: str) -> str:
    paragraphs = re.split(r"\n{2,}", text.strip())
    return "".join(
        f"<p>{html.escape(p, quote=False).replace(chr(10), '<br />')}</p>" for p in paragraphs
    )


def _status(
    state: MastodonState,
    params: dict[str, Any],
    media: list[dict[str, Any]],
    reply_to: dict[str, Any] | None,
) -> dict[str, Any]:
    status_id, account = state.new_id(), state.account()
    return {
        "id": status_id,
        "created_at": _now(),
        "in_reply_to_id": reply_to and reply_to["id"],
        "in_reply_to_account_id": reply_to and reply_to["account"]["id"],
        "sensitive": str(params.get("sensitive", "")).lower() in ("1", "true"),
        "spoiler_text": str(params.get("spoiler_text") or ""),
        "visibility": params.get("visibility") or "public",
        "language": params.get("language"),
        "uri": f"{account['uri']}/statuses/{status_id}",
        "url": f"{account['url']}/{status_id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "quotes_count": 0,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": _content(str(params.get("status") or "")),
        "filtered": [],
        "reblog": None,
        "application": {"name": "broadcast", "website": None},
        "account": account,
        "media_attachments": media,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "quote": None,
        "card": None,
        "poll": None,
    }


async def create_status(request: Request, state: MastodonState, params: dict, _: dict) -> Response:
    key = request.headers.get("idempotency-key")
    if key and key in state.idempotency:  # a retried POST returns the original status
        return JSONResponse(state.statuses[state.idempotency[key]])
    reply_to = None
    if params.get("in_reply_to_id"):
        reply_to = state.statuses.get(str(params["in_reply_to_id"]))
        if reply_to is None:
            raise ApiError(404, "The post you are trying to reply to does not appear to exist.")
    status = _status(state, params, _validate(state, params), reply_to)
    state.statuses[status["id"]] = status
    state.posts.append({**params, "id": status["id"], "idempotency_key": key, "at": time.time()})
    if key:
        state.idempotency[key] = status["id"]
    return JSONResponse(status)


async def get_status(request: Request, state: MastodonState, *_: Any) -> Response:
    return JSONResponse(_find(state.statuses, request.path_params["id"]))


async def edit_status(request: Request, state: MastodonState, params: dict, _: dict) -> Response:
    status = _find(state.statuses, request.path_params["id"])
    # UpdateStatusService replaces the attachments with media_ids: omitting them drops media.
    media = _validate(state, params)
    status.update(
        content=_content(str(params.get("status") or "")),
        edited_at=_now(),
        media_attachments=media,
        spoiler_text=str(params.get("spoiler_text") or ""),
        language=params.get("language", status["language"]),
    )
    state.edits.append({**params, "id": status["id"], "at": time.time()})
    return JSONResponse(status)


def _find(items: dict[str, dict[str, Any]], item_id: str) -> dict[str, Any]:
    if item_id not in items:
        raise ApiError(404, "Record not found")
    return items[item_id]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- media ----------------------------------------------------------------------------------


async def upload_media(
    request: Request, state: MastodonState, params: dict, files: dict
) -> Response:
    upload = files.get("file")
    if upload is None:
        raise ApiError(422, "Validation failed: File can't be blank")
    description = str(params.get("description") or "") or None
    if description and len(description) > 1500:
        raise ApiError(
            422, "Validation failed: Description is too long (maximum is 1500 characters)"
        )
    data = await upload.read()
    media_id = state.new_id()
    kind = (upload.content_type or "").split("/")[0]
    base = f"https://{state.domain}/system/media_attachments/files/{media_id}"
    state.media[media_id] = {
        "id": media_id,
        "type": kind if kind in ("image", "video", "audio") else "unknown",
        "url": None,
        "preview_url": f"{base}/small/{upload.filename}",
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "description": description,
        "meta": {"original": {"size_bytes": len(data)}},
        "blurhash": None,
        "_url": f"{base}/original/{upload.filename}",
    }
    state._pending[media_id] = state.media_pending_polls
    # v2 processes asynchronously: 202 with url null until GET /api/v1/media/:id says 200.
    return JSONResponse(_public(state.media[media_id]), 202)


async def get_media(request: Request, state: MastodonState, *_: Any) -> Response:
    media = _find(state.media, request.path_params["id"])
    if state._pending.get(media["id"], 0) > 0:
        state._pending[media["id"]] -= 1
        return JSONResponse(_public(media), 206)  # still processing
    return JSONResponse(_public(_processed(media)))


def _processed(media: dict[str, Any]) -> dict[str, Any]:
    media["url"] = media["_url"]
    return media


def _public(media: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in media.items() if not k.startswith("_")}
