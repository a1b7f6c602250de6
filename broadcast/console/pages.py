"""The console's pages. Every form posts, acts through the domain services, and redirects back
(post/redirect/get) with a short message; nothing here decides what the domain allows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.areas import service as areas
from broadcast.auth import sessions, throttle
from broadcast.auth.service import user_for_password
from broadcast.common import utcnow
from broadcast.console import areamap, library, stats
from broadcast.console.preview import plain_language_hints, previews
from broadcast.console.session import (
    COOKIE,
    LoginRequired,
    OfficerDep,
    UploaderDep,
    ViewerDep,
    set_session_cookie,
)
from broadcast.db import emit
from broadcast.delivery import outbox
from broadcast.delivery.outbox import view_of
from broadcast.deps import SessionDep
from broadcast.errors import DomainError, Invalid, TooManyRequests
from broadcast.feeds import service as feeds
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.media import service as media
from broadcast.media.api import accept_upload
from broadcast.questions import service as questions
from broadcast.questions.models import QuestionState
from broadcast.relay import service as relay
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind, UpdateState
from broadcast.web.i18n import AMSTERDAM, _
from broadcast.web.rendering import render

router = APIRouter(prefix="/console", include_in_schema=False)
FLASH = "bc_flash"
Text = Annotated[str, Form()]  # a form field; optional ones get a default


# --- signing in ----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console"):
    return render(request, "console/login.html", next=_safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Text,
    password: Text,
    next: Text = "/console",
):
    attempt = {"account": username, "client": request.client.host if request.client else ""}
    try:
        throttle.check(session, request.app.state.settings, **attempt)
    except TooManyRequests as refused:
        response = _login_refused(request, next, username, 429, minutes=refused.values["minutes"])
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    user = user_for_password(session, username.strip(), password)
    if user is None:
        throttle.failed(session, **attempt)
        audit.record(session, actor="anonymous", action="console.login_failed", subject="console")
        return _login_refused(request, next, username, 401)
    throttle.succeeded(session, **attempt)
    token, _session_row = sessions.start(session, user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, token, secure=_secure(request))
    return response


def _login_refused(request: Request, next: str, username: str, status_code: int, **values):
    """The form again, saying why: a wrong name or password (401), or too many of them (429)."""
    return render(
        request,
        "console/login.html",
        status_code=status_code,
        next=_safe_next(next),
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


# --- overview ------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, viewer: ViewerDep):
    active = incidents.listing(session, include_resolved=False)
    context = {
        "active": active,
        "areas": areas.all_areas(session),
        "pending": _pending(session),
        "waiting": stats.waiting_questions(session),
        "recent": _recent_published(session),
        "failing_feeds": [f for f in feeds.listing(session) if f.enabled and f.alerting],
    }
    if not viewer.is_officer:
        context["mine"] = _proposals_of(session, viewer.user.id)
    return _page(request, "console/dashboard.html", viewer, **context)


@router.post("/incidents")
def create_incident(
    request: Request,
    session: SessionDep,
    viewer: OfficerDep,
    title: Text,
    severity: Text,
    areas_: Annotated[list[str], Form(alias="areas")] = [],  # noqa: B006 (FastAPI copies it)
    exercise: Annotated[bool, Form()] = False,
):
    def work() -> str:
        incident = incidents.create(
            session,
            title=title,
            severity=severity,
            area_codes=areas_,
            exercise=exercise,
            creator=viewer.user,
        )
        return f"/console/incidents/{incident.id}"

    return _act(request, session, work, fallback="/console", done=_("Incident created."))


# --- one incident --------------------------------------------------------------------------


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(
    request: Request, incident_id: int, session: SessionDep, viewer: ViewerDep, template: str = ""
):
    incident = incidents.get(session, incident_id)
    updates = timeline.for_incident(session, incident.id, viewer=viewer.user)
    all_areas = areas.all_areas(session)
    return _page(
        request,
        "console/incident.html",
        viewer,
        incident=incident,
        updates=updates,
        by_id={u.id: u for u in updates},
        media_of=media.for_updates(session, [u.id for u in updates]),
        areas=all_areas,
        area_map=areamap.area_map(all_areas),
        templates=library.load(request.app.state.settings.message_templates_file),
        chosen=library.find(request.app.state.settings.message_templates_file, template),
    )


@router.post("/incidents/{incident_id}/updates")
def compose(
    request: Request,
    incident_id: int,
    session: SessionDep,
    viewer: ViewerDep,
    body_nl: Text,
    body_en: Text = "",
    severity: Text = "",
    areas_: Annotated[list[str], Form(alias="areas")] = [],  # noqa: B006
    when: Text = "now",  # now, later, draft
    publish_at: Text = "",
    next_update: Text = "",
):
    here = f"/console/incidents/{incident_id}"

    def work() -> str:
        incident = incidents.get(session, incident_id)
        update = timeline.post(
            session,
            incident,
            author=viewer.user,
            body=_bodies(body_nl, body_en),
            channels=request.app.state.channels,
            severity=severity or None,
            areas_=areas_ or None,
            publish_at=local_moment(publish_at, "publish_at") if when == "later" else None,
            next_update_due=local_moment(next_update, "next_update"),
            draft=when == "draft" and viewer.is_officer,
        )
        return f"{here}#update-{update.id}"

    done = _("Update posted.") if viewer.is_officer else _("Proposal sent for approval.")
    return _act(request, session, work, fallback=here, done=done)


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    request: Request,
    incident_id: int,
    session: SessionDep,
    viewer: OfficerDep,
    body_nl: Text,
    body_en: Text = "",
):
    here = f"/console/incidents/{incident_id}"

    def work() -> str:
        incident = incidents.get(session, incident_id)
        incidents.resolve(
            session,
            incident,
            officer=viewer.user,
            body=_bodies(body_nl, body_en),
            channels=request.app.state.channels,
        )
        return here

    return _act(request, session, work, fallback=here, done=_("All-clear published."))


@router.post("/preview")
async def preview(request: Request, viewer: ViewerDep):
    """Per-channel previews and plain-language hints for the compose form (JSON)."""
    form = await request.form()
    body = _bodies(str(form.get("body_nl", "")), str(form.get("body_en", "")), required=False)
    language = "en" if form.get("language") == "en" else "nl"
    settings = request.app.state.settings
    draft = Update(
        id=0,
        state=UpdateState.draft,
        body=body or {"nl": ""},
        severity=str(form.get("severity") or "info"),
        next_update_due=_try_moment(str(form.get("next_update", ""))),
    )
    incident = Incident(id=0, title=str(form.get("incident_title", "")), slug="", severity="info")
    incident.exercise = form.get("exercise") == "true"
    view = view_of(draft, incident, settings.public_url)
    return JSONResponse(
        {
            "channels": [
                p.__dict__ for p in previews(view, language, request.app.state.channels.active)
            ],
            "hints": [h.__dict__ for h in plain_language_hints(body.get(language, ""))],
        }
    )


# --- one update ----------------------------------------------------------------------------


@router.get("/updates/{update_id}", response_class=HTMLResponse)
def update_page(request: Request, update_id: int, session: SessionDep, viewer: OfficerDep):
    update = timeline.get(session, update_id)
    return _page(
        request,
        "console/update.html",
        viewer,
        update=update,
        incident=session.get(Incident, update.incident_id) if update.incident_id else None,
        counts=outbox.counts_by_state(session, update_id),
        trail=audit.recent(session, subject=f"update:{update_id}", limit=50),
    )


@router.get("/updates/{update_id}/deliveries.json")
def update_deliveries(update_id: int, session: SessionDep, viewer: OfficerDep):
    timeline.get(session, update_id)
    return outbox.counts_by_state(session, update_id)


@router.post("/updates/{update_id}/approve")
def approve(request: Request, update_id: int, session: SessionDep, viewer: OfficerDep):
    def act(update: Update) -> Update:
        return timeline.approve(
            session, update, officer=viewer.user, channels=request.app.state.channels
        )

    return _on_update(request, session, update_id, act, _("Approved and published."))


@router.post("/updates/{update_id}/reject")
def reject(
    request: Request,
    update_id: int,
    session: SessionDep,
    viewer: OfficerDep,
    reason: Text = "",
):
    def act(update: Update) -> Update:
        return timeline.reject(session, update, officer=viewer.user, reason=reason or None)

    return _on_update(request, session, update_id, act, _("Proposal rejected."))


@router.post("/updates/{update_id}/correct")
def correct(
    request: Request,
    update_id: int,
    session: SessionDep,
    viewer: OfficerDep,
    body_nl: Text,
    body_en: Text = "",
):
    def act(update: Update) -> Update:
        return timeline.correct(
            session,
            update,
            officer=viewer.user,
            body=_bodies(body_nl, body_en),
            channels=request.app.state.channels,
        )

    done = _("Correction published; the original stays visible, struck through.")
    return _on_update(request, session, update_id, act, done)


@router.post("/updates/{update_id}/retract")
def retract(
    request: Request, update_id: int, session: SessionDep, viewer: OfficerDep, reason: Text
):
    def act(update: Update) -> Update:
        return timeline.retract(
            session, update, officer=viewer.user, reason=reason, channels=request.app.state.channels
        )

    return _on_update(
        request, session, update_id, act, _("Update retracted, with the reason shown.")
    )


def _on_update(request, session, update_id: int, act: Callable[[Update], Update], done: str):
    """One officer action on one update, then back to its incident at the resulting update."""
    update = timeline.get(session, update_id)
    back = f"/console/incidents/{update.incident_id}"
    return _act(
        request, session, lambda: f"{back}#update-{act(update).id}", fallback=back, done=done
    )


@router.post("/updates/{update_id}/resend-failed")
def resend_failed(request: Request, update_id: int, session: SessionDep, viewer: OfficerDep):
    timeline.get(session, update_id)
    count = outbox.requeue_failed(session, update_id)
    emit(session, "requeued", update_id=update_id)
    audit.record(
        session,
        actor=viewer.user.name,
        actor_id=viewer.user.id,
        action="update.resend_failed",
        subject=f"update:{update_id}",
        requeued=count,
    )
    return _redirect(f"/console/updates/{update_id}", _("Failed deliveries queued again."))


# --- photos and videos ---------------------------------------------------------------------


@router.post("/updates/{update_id}/media")
async def add_media(request: Request, update_id: int, viewer: UploaderDep):
    """A photo or short video for a draft or a proposal (streamed, checked, cleaned)."""
    back = await _incident_url(request, update_id)
    try:
        await accept_upload(request, update_id, viewer.user)
    except DomainError as exc:
        return _refused(back, exc)
    return _redirect(back, _("Photo added; location and camera data were removed."))


@router.post("/media/{media_id}/delete")
def delete_media(request: Request, media_id: int, session: SessionDep, viewer: ViewerDep):
    item = media.get(session, media_id)
    back = f"/console/incidents/{timeline.get(session, item.update_id).incident_id}"
    try:
        path = media.remove(session, item, user=viewer.user, settings=request.app.state.settings)
    except DomainError as exc:
        return _refused(back, exc)
    session.commit()  # the row first; then the file can go
    path.unlink(missing_ok=True)
    return _redirect(f"{back}#update-{item.update_id}", _("Photo removed."))


# --- relay kit -----------------------------------------------------------------------------


@router.get("/updates/{update_id}/relay", response_class=HTMLResponse)
def relay_page(request: Request, update_id: int, session: SessionDep, viewer: ViewerDep):
    language = "en" if request.query_params.get("kit") == "en" else "nl"
    texts = relay.kit_for(
        session,
        update_id,
        viewer=viewer.user,
        language=language,
        public_url=request.app.state.settings.public_url,
    )
    update = timeline.get(session, update_id)
    reached = relay.relays_of(session, update_id) if viewer.is_officer else []
    return _page(
        request,
        "console/relay.html",
        viewer,
        update=update,
        texts=texts,
        kit_language=language,
        areas=areas.all_areas(session),
        reached=reached,
        by_area=relay.counts([row for row, _user in reached])[0],
    )


@router.post("/updates/{update_id}/relayed")
def relayed(
    request: Request,
    update_id: int,
    session: SessionDep,
    viewer: ViewerDep,
    format: Text,
    place: Text = "",
    areas_: Annotated[list[str], Form(alias="areas")] = [],  # noqa: B006
):
    here = f"/console/updates/{update_id}/relay"

    def work() -> str:
        relay.record(
            session, update_id, user=viewer.user, format=format, place=place, area_codes=areas_
        )
        return here

    return _act(
        request, session, work, fallback=here, done=_("Thank you: noted where you shared it.")
    )


# --- questions -----------------------------------------------------------------------------


@router.get("/questions", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, viewer: OfficerDep, state: str = "new"):
    chosen = QuestionState.answered if state == "answered" else QuestionState.new
    listed = questions.listing(session, state=chosen)
    return _page(
        request,
        "console/questions.html",
        viewer,
        state=chosen.value,
        questions=listed if chosen == QuestionState.answered else listed[::-1],
        figures=stats.response_times(session),
        incidents=incidents.listing(session, include_resolved=False),
    )


@router.post("/questions/{question_id}/answer")
def answer(
    request: Request,
    question_id: int,
    session: SessionDep,
    viewer: OfficerDep,
    body: Text,
    public: Annotated[bool, Form()] = False,
    incident_id: Annotated[int | None, Form()] = None,
):
    def work() -> str:
        questions.answer(
            session,
            questions.get(session, question_id),
            officer=viewer.user,
            body=body,
            public=public,
            incident_id=incident_id,
            channels=request.app.state.channels,
        )
        return "/console/questions"

    done = _("Answer published on the timeline.") if public else _("Answer sent to the resident.")
    return _act(request, session, work, fallback="/console/questions", done=done)


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, session: SessionDep, viewer: OfficerDep):
    return _page(request, "console/audit.html", viewer, events=audit.recent(session, limit=200))


# --- helpers -------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def login_first(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/console/login?next={exc.next_url}", status_code=303)


def error_page(
    request: Request, status_code: int, message: str, values: dict | None = None
) -> HTMLResponse:
    """``message`` is translated, then filled in with ``values`` (a domain error's template)."""
    return render(
        request,
        "console/error.html",
        status_code=status_code,
        viewer=None,
        message=message,
        values=values or {},
    )


def _page(request: Request, name: str, viewer, **context) -> HTMLResponse:
    flash = request.cookies.get(FLASH)
    response = render(request, name, viewer=viewer, flash=_read_flash(flash), **context)
    if flash:
        response.delete_cookie(FLASH, path="/console")
    return response


def _act(request: Request, session: Session, work: Callable[[], str], *, fallback: str, done: str):
    """Run one form's action; a refused action rolls back and shows the reason on the page."""
    try:
        with session.begin_nested():
            target = work()
    except DomainError as exc:
        return _refused(fallback, exc)
    return _redirect(target, done)


def _redirect(url: str, message: str, *, error: bool = False, values: dict | None = None):
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


def _refused(url: str, exc: DomainError) -> Response:
    return _redirect(url, exc.message, error=True, values=exc.values)


def _read_flash(cookie: str | None) -> dict | None:
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


def _safe_next(url: str) -> str:
    """Only our own console pages: never an open redirect to another site."""
    return url if url.startswith("/console") and not url.startswith("//") else "/console"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.public_url.startswith(
        "https://"
    )


def _bodies(nl: str, en: str, *, required: bool = True) -> dict[str, str]:
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


def _try_moment(value: str) -> datetime | None:
    try:
        return local_moment(value, "next_update")
    except Invalid:
        return None


async def _incident_url(request: Request, update_id: int) -> str:
    def find() -> str:
        with request.app.state.db.session_scope() as session:
            update = timeline.get(session, update_id)
            return f"/console/incidents/{update.incident_id}#update-{update_id}"

    return await asyncio.to_thread(find)


def _pending(session: Session) -> list[Update]:
    query = select(Update).where(Update.state == UpdateState.pending_approval)
    return list(session.exec(query.order_by(col(Update.created_at))))


def _proposals_of(session: Session, user_id: int) -> list[Update]:
    query = select(Update).where(Update.author_id == user_id)
    return list(session.exec(query.order_by(col(Update.created_at).desc()).limit(20)))


def _recent_published(session: Session) -> list[tuple[Update, Incident]]:
    query = (
        select(Update, Incident)
        .join(Incident, Incident.id == Update.incident_id)
        .where(Update.state == UpdateState.published, col(Update.public))
        .where(Update.kind != UpdateKind.answer)
        .order_by(col(Update.published_at).desc())
        .limit(10)
    )
    return list(session.exec(query))
