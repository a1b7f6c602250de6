"""Graph API stand-in for a Facebook Page: feed posts, photos, edits and comments.

    with FakeFacebook() as fake:          # fake.url is the versioned base, ".../v21.0"
        fake.state.rate_limit = RateWindow(limit=3, period=60)   # code 32, Page-level
        fake.state.token_expired = True   # code 190, subcode 463
        fake.state.faults.fail_next(1, 503)
        ... fake.state.posts / edits / comments / photos / rate_limited hold what happened.

As the Graph API does: form-encoded POSTs with the Page token as ``Authorization: Bearer`` or an
``access_token`` field; errors as HTTP 400 (403 for 200-range permission codes) with
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``. A Page over its
rate limit answers code 32 with ``X-Business-Use-Case-Usage`` naming
``estimated_time_to_regain_access`` in minutes; every answer carries that header. A post
needs a ``message`` or a ``link`` (else code 100); the message is at most 63,206 characters;
``POST /{post-id}`` edits the message of a post of this Page only (an unknown id: code 100,
subcode 33); ``attached_media[n]`` must name unpublished photos of this Page.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.mastodon import RateWindow
from tests.fakes.server import FakeServer, Faults, read_params

VERSION = "v21.0"
MAX_MESSAGE = 63206


class GraphError(Exception):
    def __init__(self, code: int, message: str, subcode: int | None = None, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.subcode, self.status = code, message, subcode, status


@dataclass
class FacebookState:
    page_id: str = "104857600000001"
    page_token: str = "EAAfake-facebook-page-token"
    token_expired: bool = False
    rate_limit: RateWindow = field(default_factory=lambda: RateWindow(limit=4800, period=86400))
    regain_minutes: int = 5  # what a rate-limited answer estimates
    faults: Faults = field(default_factory=Faults)
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # post id -> fields
    photos: dict[str, dict[str, Any]] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def new_id(self) -> str:
        return str(122000000000000000 + next(self._seq))

    def usage(self) -> str:
        used = min(100, round(100 * self.rate_limit.count / max(1, self.rate_limit.limit)))
        over = self.rate_limit.count > self.rate_limit.limit
        entry = {
            "type": "pages",
            "call_count": used,
            "total_cputime": 1,
            "total_time": 1,
            "estimated_time_to_regain_access": self.regain_minutes if over else 0,
        }
        return json.dumps({self.page_id: [entry]})


class FakeFacebook(FakeServer):
    def __init__(self, state: FacebookState | None = None) -> None:
        self.state = state or FacebookState()
        super().__init__(create_app(self.state))

    def start(self) -> FakeFacebook:
        super().start()
        self.base_url = self.url
        self.url = f"{self.base_url}/{VERSION}"
        return self


def create_app(state: FacebookState) -> Starlette:
    app = Starlette(
        routes=[
            Route("/{version}/{node}", endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/{version}/{node}/{edge}", endpoint, methods=["GET", "POST"]),
        ]
    )
    app.state.facebook = state
    app.state.faults = state.faults
    return app


async def endpoint(request: Request) -> Response:
    state: FacebookState = request.app.state.facebook
    state.requests.append((request.method, request.url.path))
    status = await state.faults.apply()
    if status is not None:
        return JSONResponse(
            {
                "error": {
                    "message": "An unexpected error has occurred. Please retry your request later.",
                    "type": "OAuthException",
                    "is_transient": True,
                    "code": 2,
                    "fbtrace_id": _trace(),
                }
            },
            status,
        )
    try:
        params, _files = await read_params(request)
        _authenticate(request, state, params)
        allowed = state.rate_limit.hit(time.time())  # counted per Page, after the token
        if not allowed:
            state.rate_limited.append({"path": request.url.path, "at": time.time()})
            raise GraphError(32, "Page request limit reached")
        answer = _dispatch(request, state, params)
        response: Response = JSONResponse(answer)
    except GraphError as exc:
        error: dict[str, Any] = {
            "message": f"(#{exc.code}) {exc.message}" if exc.code != 190 else exc.message,
            "type": "OAuthException",
            "code": exc.code,
            "fbtrace_id": _trace(),
        }
        if exc.subcode is not None:
            error["error_subcode"] = exc.subcode
        response = JSONResponse({"error": error}, exc.status)
        if exc.code == 190:
            response.headers["WWW-Authenticate"] = (
                'OAuth "Facebook Platform" "invalid_token" "Error validating access token"'
            )
    response.headers["X-Business-Use-Case-Usage"] = state.usage()
    return response


def _authenticate(request: Request, state: FacebookState, params: dict[str, Any]) -> None:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").removeprefix("OAuth ") or params.get("access_token")
    if not token:
        raise GraphError(
            2500, "An active access token must be used to query information about the current user."
        )
    if token != state.page_token:
        raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
    if state.token_expired:
        raise GraphError(190, "Error validating access token: Session has expired.", subcode=463)


def _dispatch(request: Request, state: FacebookState, params: dict[str, Any]) -> dict[str, Any]:
    node, edge = request.path_params["node"], request.path_params.get("edge")
    if request.method != "POST":
        raise GraphError(100, "Unsupported request in this stand-in", subcode=33)
    if edge is None:
        return _edit(state, node, params)
    if edge == "feed" and node == state.page_id:
        return _feed(state, params)
    if edge == "photos" and node == state.page_id:
        return _photo(state, params)
    if edge == "comments" and node in state.posts:
        return _comment(state, node, params)
    raise GraphError(
        100,
        f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        subcode=33,
    )


def _message(params: dict[str, Any], key: str = "message") -> str:
    message = str(params.get(key) or "")
    if len(message.encode("utf-16-le")) // 2 > MAX_MESSAGE:
        raise GraphError(100, "Invalid parameter", subcode=1349125)
    return message


def _feed(state: FacebookState, params: dict[str, Any]) -> dict[str, Any]:
    message, link = _message(params), params.get("link")
    attached = []
    for key in sorted(k for k in params if k.startswith("attached_media[")):
        try:
            media_fbid = json.loads(params[key])["media_fbid"]
        except (ValueError, KeyError, TypeError) as exc:
            raise GraphError(100, f"Invalid parameter {key}") from exc
        photo = state.photos.get(media_fbid)
        if photo is None or photo["published"] or photo.get("attached"):
            raise GraphError(100, "Invalid parameter: media_fbid is not an unpublished photo")
        attached.append(media_fbid)
    if not message and not link and not attached:
        raise GraphError(100, "Invalid parameter: the post is empty")
    if link and attached:
        raise GraphError(100, "Invalid parameter: link and attached_media cannot be combined")
    if link and not str(link).startswith(("http://", "https://")):
        raise GraphError(100, "Invalid parameter: link is not a URL")
    for media_fbid in attached:
        state.photos[media_fbid]["attached"] = True
    post_id = f"{state.page_id}_{state.new_id()}"
    state.posts[post_id] = {"message": message, "link": link, "attached": attached}
    return {"id": post_id}


def _photo(state: FacebookState, params: dict[str, Any]) -> dict[str, Any]:
    url = str(params.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise GraphError(324, "Requires upload file")
    published = str(params.get("published", "true")).lower() != "false"
    photo_id = state.new_id()
    caption = _message(params, "caption")
    state.photos[photo_id] = {
        "url": url,
        "caption": caption,
        "alt": params.get("alt_text_custom"),
        "published": published,
    }
    if not published:
        return {"id": photo_id}
    post_id = f"{state.page_id}_{photo_id}"
    state.posts[post_id] = {"message": caption, "link": None, "attached": [photo_id]}
    return {"id": photo_id, "post_id": post_id}


def _edit(state: FacebookState, post_id: str, params: dict[str, Any]) -> dict[str, Any]:
    post = state.posts.get(post_id)
    if post is None:  # only this Page's own posts can be edited with the Page token
        raise GraphError(
            100,
            f"Unsupported post request. Object with ID '{post_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            subcode=33,
        )
    if "message" not in params:
        raise GraphError(100, "Invalid parameter: nothing to edit")
    post["message"] = _message(params)
    state.edits.append({"id": post_id, "message": post["message"]})
    return {"success": True}


def _comment(state: FacebookState, post_id: str, params: dict[str, Any]) -> dict[str, Any]:
    message = _message(params)
    if not message:
        raise GraphError(100, "Invalid parameter: the comment is empty")
    comment_id = f"{post_id.split('_')[-1]}_{state.new_id()}"
    state.comments.append({"id": comment_id, "post": post_id, "message": message})
    return {"id": comment_id}


def _trace() -> str:
    return uuid.uuid4().hex[:11]
