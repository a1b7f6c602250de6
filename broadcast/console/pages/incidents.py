"""The overview and one incident's page: compose with a live preview, resolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlmodel import Session, col, select
from starlette.datastructures import State

from broadcast.areas import service as areas
from broadcast.common import PlainText, Severity, utcnow
from broadcast.console import areamap
from broadcast.console.pages.common import (
    Codes,
    Line,
    Text,
    bodies_of,
    local_moment,
    perform,
    show_page,
    try_moment,
)
from broadcast.console.preview import plain_language_hints, previewed, previews
from broadcast.console.session import OfficerDep, ViewerDep
from broadcast.deps import Id, SessionDep
from broadcast.duty import service as duty
from broadcast.fanout.views import view_of
from broadcast.feeds import service as feeds
from broadcast.i18n import _
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.library import service as library
from broadcast.media import service as media
from broadcast.questions import service as questions
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind, UpdateState
from broadcast.web.limits import small_form
from channels.base import Channel

router = APIRouter()


# --- overview ------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, viewer: ViewerDep):
    active = incidents.listing(session, include_resolved=False)
    context = {
        "active": active,
        "areas": areas.all_areas(session),
        "pending": _pending(session),
        "waiting": questions.waiting(session)[0],
        "recent": _recent_published(session),
        "failing_feeds": [f for f in feeds.listing(session) if f.enabled and f.alerting],
        "shift": duty.on_duty(session),
        "due_soon": duty.due_soon(active, utcnow(), request.app.state.settings),
    }
    if not viewer.is_officer:
        assert viewer.user.id is not None  # a signed-in user is a stored row
        context["mine"] = _proposals_of(session, viewer.user.id)
    return show_page(request, "console/dashboard.html", viewer, **context)


@router.post("/incidents")
def create_incident(
    request: Request,
    session: SessionDep,
    viewer: OfficerDep,
    title: Line,
    severity: Line,
    areas_: Codes = [],  # noqa: B006 (FastAPI copies it)
    exercise: Annotated[bool, Form()] = False,
    exercise_widened: Annotated[bool, Form()] = False,
):
    def work() -> str:
        incident = incidents.create(
            session,
            title=title,
            severity=severity,
            area_codes=areas_,
            exercise=exercise,
            exercise_widened=exercise_widened,
            creator=viewer.user,
        )
        return f"/console/incidents/{incident.id}"

    return perform(request, session, work, fallback="/console", done=_("Incident created."))


# --- one incident --------------------------------------------------------------------------


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    viewer: ViewerDep,
    template: Annotated[PlainText, Query(max_length=200)] = "",
):
    incident = incidents.get(session, incident_id)
    updates = timeline.for_incident(session, incident_id, viewer=viewer.user)
    all_areas = areas.all_areas(session)
    return show_page(
        request,
        "console/incident.html",
        viewer,
        incident=incident,
        updates=updates,
        by_id={u.id: u for u in updates},
        media_of=media.for_updates(session, [u.id for u in updates if u.id is not None]),
        areas=all_areas,
        area_map=areamap.area_map(all_areas),
        templates=library.load(session, request.app.state.settings.message_templates_file),
        chosen=library.find(session, request.app.state.settings.message_templates_file, template),
    )


@router.post("/incidents/{incident_id}/updates")
def compose(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    viewer: ViewerDep,
    body_nl: Text,
    body_en: Text = "",
    severity: Line = "",
    areas_: Codes = [],  # noqa: B006
    when: Line = "now",  # now, later, draft
    publish_at: Line = "",
    next_update: Line = "",
):
    here = f"/console/incidents/{incident_id}"

    def work() -> str:
        incident = incidents.get(session, incident_id)
        update = timeline.post(
            session,
            incident,
            author=viewer.user,
            body=bodies_of(body_nl, body_en),
            channels=request.app.state.channels,
            severity=severity or None,
            areas_=areas_ or None,
            publish_at=local_moment(publish_at, "publish_at") if when == "later" else None,
            next_update_due=local_moment(next_update, "next_update"),
            draft=when == "draft" and viewer.is_officer,
        )
        return f"{here}#update-{update.id}"

    done = _("Update posted.") if viewer.is_officer else _("Proposal sent for approval.")
    return perform(request, session, work, fallback=here, done=done)


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    request: Request,
    incident_id: Id,
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
            body=bodies_of(body_nl, body_en),
            channels=request.app.state.channels,
        )
        return here

    return perform(request, session, work, fallback=here, done=_("All-clear published."))


@router.post("/preview")
async def preview(request: Request, viewer: ViewerDep):
    """Per-channel previews and plain-language hints for the compose form (JSON)."""
    form = await small_form(request)
    body = bodies_of(form.get("body_nl", ""), form.get("body_en", ""), required=False)
    language = "en" if form.get("language") == "en" else "nl"
    settings = request.app.state.settings
    draft = Update(
        id=0,
        state=UpdateState.draft,
        body=body or {"nl": ""},
        severity=_severity(form.get("severity") or "info"),
        next_update_due=try_moment(form.get("next_update", "")),
    )
    incident = Incident(id=0, title=form.get("incident_title", ""), slug="", severity=Severity.info)
    incident.exercise = form.get("exercise") == "true"
    view = view_of(draft, incident, settings.public_url)
    classes = _previewed(request.app.state)
    return JSONResponse(
        {
            "channels": [
                p.__dict__
                for p in previews(view, language, request.app.state.channels.active, classes)
            ],
            "hints": [h.__dict__ for h in plain_language_hints(body.get(language, ""))],
        }
    )


def _severity(value: str) -> Severity:
    """The form's severity; an unknown one previews as info (neither puts a headline on)."""
    try:
        return Severity(value)
    except ValueError:
        return Severity.info


def _previewed(state: State) -> list[type[Channel]]:
    """The adapters to preview, read from the registry on the first preview (not on every
    keystroke, nor for an application that never shows the compose form)."""
    if not hasattr(state, "previewed"):
        state.previewed = previewed()
    return state.previewed


def _pending(session: Session) -> list[Update]:
    query = select(Update).where(Update.state == UpdateState.pending_approval)
    return list(session.exec(query.order_by(col(Update.created_at))))


def _proposals_of(session: Session, user_id: int) -> list[Update]:
    query = select(Update).where(Update.author_id == user_id)
    return list(session.exec(query.order_by(col(Update.created_at).desc()).limit(20)))


def _recent_published(session: Session) -> list[tuple[Update, Incident]]:
    query = (
        select(Update, Incident)
        .join(Incident, col(Incident.id) == Update.incident_id)
        .where(Update.state == UpdateState.published, col(Update.public))
        .where(Update.kind != UpdateKind.answer)
        .order_by(col(Update.published_at).desc())
        .limit(10)
    )
    return list(session.exec(query))
