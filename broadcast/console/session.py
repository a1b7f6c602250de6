"""Who is looking at the console: the session cookie, and the checks a form post must pass."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from broadcast.auth import sessions
from broadcast.auth.models import Role, User
from broadcast.auth.sessions import COOKIE
from broadcast.deps import SessionDep
from broadcast.errors import Forbidden
from broadcast.i18n import _
from broadcast.web.limits import small_form
from broadcast.web.security import same_origin, tokens_match

LOGIN_COOKIE = "bc_login"  # the login form's CSRF token, before there is a session
DEVICE_COOKIE = "bc_device"  # this browser signed in before (see broadcast.auth.throttle)
LOGIN_PATH = "/console/login"


class LoginRequired(Exception):
    """Answered with a redirect to the login form (see ``pages.install``)."""

    def __init__(self, next_url: str):
        self.next_url = next_url


@dataclass(frozen=True)
class Viewer:
    user: User
    csrf: str

    @property
    def is_officer(self) -> bool:
        return self.user.role in (Role.officer, Role.admin)

    @property
    def is_admin(self) -> bool:
        return self.user.role == Role.admin


def current_viewer(request: Request, session: SessionDep) -> Viewer:
    found = sessions.lookup(session, request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired(quote(request.url.path))
    user, row = found
    return Viewer(user=user, csrf=row.csrf_token)


async def checked_viewer(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]):
    """For every state-changing request: same origin, and the session's CSRF token."""
    if request.method not in ("GET", "HEAD"):
        headers = request.headers
        if not same_origin(request):
            raise Forbidden(_("cross-site request refused"))
        presented = headers.get("x-csrf-token")
        if presented is None and "form" in headers.get("content-type", ""):
            presented = (await small_form(request)).get("csrf")
        if not tokens_match(viewer.csrf, presented):
            raise Forbidden(_("the form has expired; reload the page and try again"))
    return viewer


async def uploading_viewer(request: Request) -> Viewer:
    """For file uploads, whose body is streamed to disk by the route: the session is looked up
    in a transaction of its own (none stays open while the file arrives) and the CSRF token
    comes in the query string, as a multipart form cannot be read twice."""

    def lookup():
        with request.app.state.db.session_scope() as session:
            return current_viewer(request, session)

    viewer = await asyncio.to_thread(lookup)
    if not same_origin(request):
        raise Forbidden(_("cross-site request refused"))
    if not tokens_match(viewer.csrf, request.query_params.get("csrf")):
        raise Forbidden(_("the form has expired; reload the page and try again"))
    return viewer


def officer_only(viewer: Annotated[Viewer, Depends(checked_viewer)]) -> Viewer:
    if not viewer.is_officer:
        raise Forbidden(_("only communication advisers may do this"))
    return viewer


def admin_only(viewer: Annotated[Viewer, Depends(checked_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden(_("only administrators may do this"))
    return viewer


ViewerDep = Annotated[Viewer, Depends(checked_viewer)]
AdminDep = Annotated[Viewer, Depends(admin_only)]
OfficerDep = Annotated[Viewer, Depends(officer_only)]
UploaderDep = Annotated[Viewer, Depends(uploading_viewer)]


def set_session_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(sessions.LIFETIME.total_seconds()),
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )


def login_token(request: Request) -> str:
    """The login form's CSRF token: the browser's own (double-submit cookie) or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)


def set_login_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, secure=secure, samesite="strict", path=LOGIN_PATH
    )


def login_form_forged(request: Request, presented: str | None) -> bool:
    """Login CSRF: another site must not sign a browser in (to an account of its choosing)."""
    return not same_origin(request) or not tokens_match(
        request.cookies.get(LOGIN_COOKIE) or "", presented
    )


def set_device_cookie(response: Response, value: str, *, secure: bool, days: int) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=days * 24 * 3600,
        httponly=True,
        secure=secure,
        samesite="strict",
        path=LOGIN_PATH,
    )
