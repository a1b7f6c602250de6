"""Signing in and out, with the failed-login throttle."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from broadcast import audit
from broadcast.auth import sessions, throttle
from broadcast.auth.service import user_for_password
from broadcast.console.pages.common import (
    Text,
    is_secure,
    safe_next,
)
from broadcast.console.session import COOKIE, ViewerDep, set_session_cookie
from broadcast.deps import SessionDep
from broadcast.errors import TooManyRequests
from broadcast.web.rendering import render
from broadcast.web.security import client_address

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console"):
    return render(request, "console/login.html", next=safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Text,
    password: Text,
    next: Text = "/console",
):
    attempt = {"account": username, "client": client_address(request)}
    try:
        throttle.check(session, request.app.state.settings, **attempt)
    except TooManyRequests as throttled:
        response = _login_refused(request, next, username, 429, minutes=throttled.values["minutes"])
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    user = user_for_password(session, username.strip(), password)
    if user is None:
        throttle.failed(session, **attempt)
        audit.record(session, actor="anonymous", action="console.login_failed", subject="console")
        return _login_refused(request, next, username, 401)
    throttle.succeeded(session, **attempt)
    token, _session_row = sessions.start(session, user)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, token, secure=is_secure(request))
    return response


def _login_refused(request: Request, next: str, username: str, status_code: int, **values):
    """The form again, saying why: a wrong name or password (401), or too many of them (429)."""
    return render(
        request,
        "console/login.html",
        status_code=status_code,
        next=safe_next(next),
        error=status_code,
        username=username,
        **values,
    )


@router.post("/logout")
def logout(request: Request, session: SessionDep, viewer: ViewerDep):
    sessions.end(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
