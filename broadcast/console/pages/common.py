"""What every console page shares: post/redirect/get with a one-time message (a cookie), form
fields, and reading what officers type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from broadcast.common import Code, PlainText, utcnow
from broadcast.errors import DomainError, Invalid
from broadcast.i18n import AMSTERDAM, _
from broadcast.timeline import service as timeline
from broadcast.web.rendering import render

FLASH = "bc_flash"
# Form fields (optional ones get a default): free text up to an update's length, a one-line
# value (a title, a place, a time), and the list of area codes a form ticks.
Text = Annotated[PlainText, Form(max_length=timeline.MAX_BODY_CHARS)]
Line = Annotated[PlainText, Form(max_length=200)]
Codes = Annotated[list[Code], Form(alias="areas", max_length=500)]


def show_page(request: Request, name: str, viewer, **context) -> HTMLResponse:
    """The page, with the one-time message; ``status_code`` in the context sets the status."""
    status_code = int(context.pop("status_code", 200))
    flash = request.cookies.get(FLASH)
    response = render(
        request, name, status_code=status_code, viewer=viewer, flash=read_flash(flash), **context
    )
    if flash:
        response.delete_cookie(FLASH, path="/console")
    return response


def perform(
    request: Request, session: Session, work: Callable[[], str], *, fallback: str, done: str
):
    """Run one form's action; a refused action rolls back and shows the reason on the page."""
    try:
        with session.begin_nested():
            target = work()
    except DomainError as exc:
        return refused_to(fallback, exc)
    return back_to(target, done)


def back_to(url: str, message: str, *, error: bool = False, values: dict | None = None):
    """Back to a page, which then shows ``message`` once (translated, values filled in)."""
    note = {
        "message": message,
        "error": error,
        "values": {k: str(v) for k, v in (values or {}).items()},
    }
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH, quote(json.dumps(note)), max_age=60, httponly=True, samesite="lax", path="/console"
    )
    return response


def refused_to(url: str, exc: DomainError) -> Response:
    return back_to(url, exc.message, error=True, values=exc.values)


def read_flash(cookie: str | None) -> dict | None:
    try:
        note = json.loads(unquote(cookie)) if cookie else None
    except ValueError:
        return None
    if not isinstance(note, dict) or not isinstance(note.get("message"), str):
        return None
    return {
        "message": note["message"],
        "error": bool(note.get("error")),
        "values": note.get("values") or {},
    }


def safe_next(url: str) -> str:
    """Only our own console pages: never an open redirect to another site."""
    return url if url.startswith("/console") and not url.startswith("//") else "/console"


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.public_url.startswith(
        "https://"
    )


def bodies_of(nl: str, en: str, *, required: bool = True) -> dict[str, str]:
    bodies = {lang: text.strip() for lang, text in (("nl", nl), ("en", en)) if text.strip()}
    if required and "nl" not in bodies:
        raise Invalid(_("the Dutch text is required"))
    return bodies


def local_moment(value: str, name: str) -> datetime | None:
    """A time typed in the console, in Amsterdam time: "2026-11-23T14:30", or "14:30" for the
    next such moment (today, or tomorrow when it has passed)."""
    value = value.strip()
    if not value:
        return None
    try:
        if "T" in value or "-" in value:
            return datetime.fromisoformat(value).replace(tzinfo=AMSTERDAM)
        hour, minute = (int(part) for part in value.split(":"))
        now = utcnow().astimezone(AMSTERDAM)
        moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    except ValueError:
        raise Invalid(
            _("%(field)s: %(value)s is not a time (use 14:30 or a date and time)"),
            field=name,
            value=repr(value),
        ) from None


def try_moment(value: str) -> datetime | None:
    try:
        return local_moment(value, "next_update")
    except Invalid:
        return None


async def incident_url(request: Request, update_id: int) -> str:
    def find() -> str:
        with request.app.state.db.session_scope() as session:
            update = timeline.get(session, update_id)
            return f"/console/incidents/{update.incident_id}#update-{update_id}"

    return await asyncio.to_thread(find)
