"""Who is on duty (take over, with a hand-over note), linking an officer's chat with the bot,
and the console's own live notices: the reminder before a promised update is late."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session
from sse_starlette.sse import EventSourceResponse

from broadcast.console.pages.common import Text, back_to, perform, show_page
from broadcast.console.session import OfficerDep, Viewer, current_viewer
from broadcast.db import Database
from broadcast.deps import SessionDep
from broadcast.duty import service as duty
from broadcast.errors import DomainError, Forbidden
from broadcast.i18n import AMSTERDAM, _, translator
from broadcast.web import i18n as web_i18n
from broadcast.web import live

router = APIRouter()
HERE = "/console/duty"


@router.get("/duty", response_class=HTMLResponse)
def duty_page(request: Request, session: SessionDep, viewer: OfficerDep):
    return _duty_page(request, session, viewer, code=None)


def _duty_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    code: str | None,
    refused: DomainError | None = None,
    kept: str = "",
):
    assert viewer.user.id is not None  # a signed-in user is a stored row
    channels = request.app.state.channels
    bot = channels.active.get(duty.CHAT_CHANNEL)
    shifts = duty.history(session, limit=20)
    return show_page(
        request,
        "console/duty.html",
        viewer,
        shift=shifts[0] if shifts else None,
        previous=shifts[1] if len(shifts) > 1 else None,
        shifts=shifts,
        chat=duty.chat_of(session, viewer.user.id),
        bot=bot,
        bot_link=bot.subscribe_link() if bot is not None else None,
        code=code,
        refused=refused,
        kept=kept,
        status_code=refused.status_code if refused else 200,
        reminder_minutes=request.app.state.settings.promise_reminder_minutes,
    )


@router.post("/duty")
def take_over(request: Request, session: SessionDep, viewer: OfficerDep):
    def work() -> str:
        duty.take_over(session, viewer.user)
        return HERE

    return perform(request, session, work, fallback=HERE, done=_("You are on duty now."))


@router.post("/duty/note", response_class=HTMLResponse)
def write_note(request: Request, session: SessionDep, viewer: OfficerDep, note: Text = ""):
    """Refused (too long, or not on duty): the page again with the reason and the note kept."""
    try:
        with session.begin_nested():
            duty.write_note(session, viewer.user, note)
    except DomainError as exc:
        return _duty_page(request, session, viewer, code=None, refused=exc, kept=note)
    return back_to(HERE, _("The hand-over note is saved."))


@router.post("/duty/chat-code", response_class=HTMLResponse)
def chat_code(request: Request, session: SessionDep, viewer: OfficerDep):
    """A one-time code, shown once on this page (never in a redirect's cookie or URL)."""
    code = duty.new_link_code(session, viewer.user)
    return _duty_page(request, session, viewer, code=code)


@router.post("/duty/chat-unlink")
def chat_unlink(request: Request, session: SessionDep, viewer: OfficerDep):
    def work() -> str:
        duty.unlink_chat(session, viewer.user)
        return HERE

    return perform(request, session, work, fallback=HERE, done=_("The chat is unlinked."))


# --- live notices --------------------------------------------------------------------------


@router.get("/events")
async def console_events(request: Request):
    """Server-Sent Events for the signed-in officer: a ``reminder`` (JSON: the incident's
    title, the promised time, its console page) when a promise of an incident is nearly due
    and this officer is on duty (or nobody is)."""
    db: Database = request.app.state.db

    def lookup() -> Viewer:
        with db.session_scope() as session:
            return current_viewer(request, session)

    viewer = await asyncio.to_thread(lookup)
    if not viewer.is_officer:
        raise Forbidden(_("only communication advisers may do this"))
    language = web_i18n.language_of(request)
    return EventSourceResponse(_notices(db, viewer, language), ping=live.KEEPALIVE_SECONDS)


async def _notices(db: Database, viewer: Viewer, language: str) -> AsyncIterator[bytes]:
    with db.bus.subscribe(maxsize=100) as events:
        yield b": connected\n\n"
        while True:
            event = await events.get()
            if event.get("kind") == "reminder" and viewer.user.id in event.get("officers", []):
                yield _reminder_bytes(event, language)


def _reminder_bytes(event: dict, language: str) -> bytes:
    translate = translator(language)
    due = datetime.fromisoformat(str(event["due"])).astimezone(AMSTERDAM).strftime("%H:%M")
    notice = {
        "incident_id": event["incident_id"],
        "text": translate(
            "Next update promised at %(time)s: %(title)s", time=due, title=str(event["title"])
        ),
        "url": f"/console/incidents/{int(event['incident_id'])}",
        "link": translate("Write the update"),
    }
    return f"event: reminder\ndata: {json.dumps(notice)}\n\n".encode()
