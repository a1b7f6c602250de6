"""Signing in and out: the login form's CSRF protection and the failed-login throttle."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from broadcast import audit
from broadcast.auth import sessions, throttle
from broadcast.auth.service import user_for_password
from broadcast.console.pages.common import Text, is_secure, safe_next
from broadcast.console.session import (
    COOKIE,
    DEVICE_COOKIE,
    ViewerDep,
    login_form_forged,
    login_token,
    set_device_cookie,
    set_login_cookie,
    set_session_cookie,
)
from broadcast.deps import SessionDep, client_address
from broadcast.errors import TooManyRequests
from broadcast.web.rendering import render

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console"):
    return _form(request, next)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Text,
    password: Text,
    next: Text = "/console",
    csrf: Text = "",
):
    if login_form_forged(request, csrf):
        return _form(request, next, username=username, status_code=403, error=403)
    settings = request.app.state.settings
    attempt = throttle.Attempt(
        account=username,
        client=client_address(request),
        device=request.cookies.get(DEVICE_COOKIE),
    )
    try:
        throttle.check(session, settings, attempt)
    except TooManyRequests as throttled:
        response = _form(
            request, next, username=username, status_code=429, error=429, **throttled.values
        )
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    user = user_for_password(session, username.strip(), password)
    if user is None:
        throttle.failed(session, settings, attempt)
        audit.record(session, actor="anonymous", action="console.login_failed", subject="console")
        return _form(request, next, username=username, status_code=401, error=401)
    device = throttle.succeeded(session, settings, attempt)
    token, _session_row = sessions.start(session, user)
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = is_secure(request)
    set_session_cookie(response, token, secure=secure)
    set_device_cookie(response, device, secure=secure, days=settings.login_device_days)
    return response


def _form(request: Request, next: str, *, status_code: int = 200, error=None, **values):
    """The login form, with its CSRF token; after a refusal it says why: a forged or stale
    form (403), a wrong name or password (401), or too many of them (429)."""
    token = login_token(request)
    response = render(
        request,
        "console/login.html",
        status_code=status_code,
        next=safe_next(next),
        error=error,
        login_csrf=token,
        **values,
    )
    set_login_cookie(response, token, secure=is_secure(request))
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, viewer: ViewerDep):
    sessions.end(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
