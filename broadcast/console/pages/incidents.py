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
    back_to,
    bodies_of,
    local_moment,
    perform,
    show_page,
    try_moment,
)
from broadcast.console.preview import (
    SMS,
    audience_of,
    plain_language_hints,
    previewed,
    previews,
    sms_languages,
    total_cost,
)
from broadcast.console.session import OfficerDep, Viewer, ViewerDep
from broadcast.deps import Id, SessionDep
from broadcast.duty import service as duty
from broadcast.errors import DomainError
from broadcast.fanout.audience import Reach, reach
from broadcast.fanout.views import view_of
from broadcast.feeds import service as feeds
from broadcast.i18n import AMSTERDAM, _
from broadcast.incidents import instructions
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.library import service as library
from broadcast.media import service as media
from broadcast.questions import service as questions
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind, UpdateState
from broadcast.timeline.placeholders import unfilled
from broadcast.web.limits import small_form_items
from channels.base import Channel, UpdateView

router = APIRouter()
InstructionText = Annotated[PlainText, Form(max_length=instructions.MAX_CHARS)]


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
    return _incident_page(request, session, viewer, incident_id, template=template)


def _incident_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    incident_id: int,
    *,
    template: str = "",
    refused: DomainError | None = None,
    kept: dict | None = None,
):
    """The incident; after a refused update with the reason and the form as it was typed."""
    incident = incidents.get(session, incident_id)
    updates = timeline.for_incident(session, incident_id, viewer=viewer.user)
    all_areas = areas.all_areas(session)
    templates_file = request.app.state.settings.message_templates_file
    return show_page(
        request,
        "console/incident.html",
        viewer,
        status_code=refused.status_code if refused else 200,
        incident=incident,
        updates=updates,
        by_id={u.id: u for u in updates},
        media_of=media.for_updates(session, [u.id for u in updates if u.id is not None]),
        areas=all_areas,
        area_map=areamap.area_map(all_areas),
        templates=library.load(session, templates_file),
        chosen=library.find(session, templates_file, template),
        refused=refused,
        kept=kept or {},
        instruction=instructions.current(session, incident_id),
        instruction_history=instructions.history(session, incident_id),
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
    try:
        with session.begin_nested():
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
    except DomainError as exc:  # the page again, with everything as typed: nothing is lost
        kept = {
            "form": "compose",
            "body_nl": body_nl,
            "body_en": body_en,
            "severity": severity,
            "areas": areas_,
            "when": when,
            "publish_at": publish_at,
            "next_update": next_update,
        }
        return _incident_page(request, session, viewer, incident_id, refused=exc, kept=kept)
    message, values = outcome_message(update)
    return back_to(f"{here}#update-{update.id}", message, values=values)


@router.post("/incidents/{incident_id}/instruction")
def pin_instruction(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    body_nl: InstructionText,
    body_en: InstructionText = "",
):
    """Pin or change "Wat moet u nu doen" (a new version, in the open)."""
    try:
        with session.begin_nested():
            incident = incidents.get(session, incident_id)
            was = instructions.current(session, incident_id)
            now = instructions.pin(
                session, incident, body=bodies_of(body_nl, body_en), officer=viewer.user
            )
    except DomainError as exc:  # the page again, with the text as typed
        kept = {"form": "instruction", "body_nl": body_nl, "body_en": body_en}
        return _incident_page(request, session, viewer, incident_id, refused=exc, kept=kept)
    if was is None:
        done = _("Instruction pinned.")
    elif was.id == now.id:
        done = _("The instruction is unchanged.")
    else:
        done = _("Instruction changed; the previous version stays visible.")
    return back_to(f"/console/incidents/{incident_id}#instruction", done)


@router.post("/incidents/{incident_id}/instruction/clear")
def clear_instruction(request: Request, incident_id: Id, session: SessionDep, viewer: OfficerDep):
    def work() -> str:
        instructions.clear(session, incidents.get(session, incident_id), officer=viewer.user)
        return f"/console/incidents/{incident_id}#instruction"

    here = f"/console/incidents/{incident_id}"
    return perform(request, session, work, fallback=here, done=_("Instruction cleared."))


def outcome_message(update: Update) -> tuple[str, dict[str, str]]:
    """What happened, in words: published, scheduled for a time, kept as a draft, proposed."""
    if update.state == UpdateState.scheduled and update.publish_at is not None:
        moment = update.publish_at.astimezone(AMSTERDAM)
        at = moment.strftime("%H:%M")
        if moment.date() != utcnow().astimezone(AMSTERDAM).date():
            at = moment.strftime("%d-%m %H:%M")
        return _("Scheduled for %(time)s."), {"time": at}
    messages = {
        UpdateState.published: _("Published."),
        UpdateState.draft: _("Draft saved."),
        UpdateState.pending_approval: _("Proposal sent for approval."),
    }
    return messages.get(update.state, _("Update posted.")), {}


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
    """Per-channel previews, plain-language hints and what publishing will do (for officers:
    recipients per channel, SMS segments per language, their cost), for the compose form."""
    items = await small_form_items(request)
    form = dict(items)
    ticked = [value for name, value in items if name == "areas"]
    body = bodies_of(form.get("body_nl", ""), form.get("body_en", ""), required=False)
    language = "en" if form.get("language") == "en" else "nl"
    state = request.app.state
    incident_id = int(form["incident_id"]) if form.get("incident_id", "").isdigit() else None

    def work(session: Session) -> tuple[Update, Incident, dict[str, Reach]]:
        incident = session.get(Incident, incident_id) if incident_id else None
        draft = _draft_of(session, form, ticked, body, incident)
        if incident is None:  # (a form from before incident ids were sent: its title alone)
            title = form.get("incident_title", "")
            incident = Incident(id=0, title=title, slug="", severity=Severity.info)
            incident.exercise = form.get("exercise") == "true"
        reached = reach(session, draft, state.channels) if viewer.is_officer else {}
        return draft, incident, reached

    draft, incident, reached = await state.db.run(work, write=False)
    view = view_of(draft, incident, state.settings.public_url)
    classes = _previewed(state)
    answer: dict = {
        "channels": [p.__dict__ for p in previews(view, language, state.channels.active, classes)],
        "hints": [h.__dict__ for h in plain_language_hints(body.get(language, ""))],
        "placeholders": unfilled(body),  # publishing and scheduling refuse them
    }
    if viewer.is_officer:
        answer |= _publication(view, reached, classes, state)
    return JSONResponse(answer)


def _draft_of(
    session: Session,
    form: dict[str, str],
    ticked: list[str],
    body: dict[str, str],
    incident: Incident | None,
) -> Update:
    """The update the form would post, as ``timeline.post`` fills it in (areas default to the
    incident's), never stored."""
    known = {area.code for area in areas.all_areas(session)}
    return Update(
        id=0,
        incident_id=incident.id if incident else None,
        state=UpdateState.draft,
        body=body or {"nl": ""},
        severity=_severity(form.get("severity") or "info"),
        areas=[c for c in ticked if c in known] or (incident.areas if incident else []),
        next_update_due=try_moment(form.get("next_update", "")),
    )


def _publication(view: UpdateView, reached: dict[str, Reach], classes, state: State) -> dict:
    price = state.settings.sms_price_per_segment
    sms_class = next((cls for cls in classes if cls.name == SMS), None)
    languages = []
    if sms_class is not None:
        renderer = state.channels.active.get(SMS) or sms_class.preview_renderer()
        languages = sms_languages(view, renderer, reached.get(SMS), price)
    return {
        "audience": audience_of(reached, classes),
        "sms": [s.__dict__ for s in languages],
        "cost": total_cost(price, languages),
        "price_per_segment": str(price) if price is not None else None,
    }


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
