"""Residents' questions, with response-time figures, and the audit log."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from broadcast import paging
from broadcast.auditlog import api as audit_api
from broadcast.auditlog import service as auditlog
from broadcast.common import PlainText
from broadcast.console import stats
from broadcast.console.pages.common import Line, Text, back_to, local_moment, perform, show_page
from broadcast.console.session import OfficerDep, Viewer
from broadcast.deps import Id, SessionDep
from broadcast.errors import DomainError, Invalid
from broadcast.i18n import ACTION, _
from broadcast.incidents import service as incidents
from broadcast.questions import service as questions
from broadcast.questions.models import QuestionState

router = APIRouter()


# --- questions -----------------------------------------------------------------------------


@router.get("/questions", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, viewer: OfficerDep, state: str = "new"):
    return _inbox(request, session, viewer, state)


def _inbox(
    request: Request,
    session: Session,
    viewer: Viewer,
    state: str,
    *,
    refused: DomainError | None = None,
    kept: dict | None = None,
):
    """The inbox; after a refused answer with the reason and the text as it was typed."""
    chosen = QuestionState.answered if state == "answered" else QuestionState.new
    listed = questions.listing(session, state=chosen)
    channels = request.app.state.channels
    return show_page(
        request,
        "console/questions.html",
        viewer,
        status_code=refused.status_code if refused else 200,
        state=chosen.value,
        questions=listed if chosen == QuestionState.answered else listed[::-1],
        private_ok={q.id: questions.can_answer_privately(q, channels) for q in listed},
        figures=stats.response_times(session),
        incidents=incidents.listing(session, include_resolved=False),
        refused=refused,
        kept=kept or {},
    )


@router.post("/questions/{question_id}/answer")
def answer(
    request: Request,
    question_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    body: Text,
    public: Annotated[bool, Form()] = False,
    incident_id: Annotated[Id | None, Form()] = None,
):
    try:
        with session.begin_nested():
            questions.answer(
                session,
                questions.get(session, question_id),
                officer=viewer.user,
                body=body,
                public=public,
                incident_id=incident_id,
                channels=request.app.state.channels,
            )
    except DomainError as exc:  # the page again, with what was typed: nothing is lost
        kept = {"id": question_id, "body": body, "public": public, "incident_id": incident_id}
        return _inbox(request, session, viewer, "new", refused=exc, kept=kept)
    done = _("Answer published on the timeline.") if public else _("Answer sent to the resident.")
    return back_to("/console/questions", done)


@router.post("/questions/{question_id}/move")
def move(
    request: Request,
    question_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    incident_id: Line = "",  # empty: no incident
):
    def work() -> str:
        chosen = int(incident_id) if incident_id.isdigit() else None
        question = questions.get(session, question_id)
        questions.move(session, question, officer=viewer.user, incident_id=chosen)
        return f"/console/questions#question-{question_id}"

    done = _("The question was moved.")
    return perform(request, session, work, fallback="/console/questions", done=done)


# --- audit ---------------------------------------------------------------------------------


AUDIT_PAGE = 100
Field = Annotated[PlainText, Query(max_length=200)]  # a filter of the audit page


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    session: SessionDep,
    viewer: OfficerDep,
    user: Field = "",
    action: Field = "",
    incident_id: Field = "",
    since: Field = "",
    until: Field = "",
    cursor: Field = "",
):
    form = _typed(user=user, action=action, incident_id=incident_id, since=since, until=until)
    refused = None
    try:
        found = auditlog.events(
            session, _audit_filter(form), before=paging.decode(cursor), limit=AUDIT_PAGE
        )
    except DomainError as exc:
        found, refused = [], exc
    page, next_cursor = paging.split(found, AUDIT_PAGE)
    return show_page(
        request,
        "console/audit.html",
        viewer,
        status_code=refused.status_code if refused else 200,
        refused=refused,
        events=page,
        form=form,
        query=urlencode(form),
        older=urlencode(form | {"cursor": next_cursor}) if next_cursor else None,
        actions=sorted(set(auditlog.actions_in_use(session)) | set(ACTION)),
        incidents=incidents.listing(session),
    )


@router.get("/audit.csv")
def audit_csv(
    request: Request,
    viewer: OfficerDep,
    user: Field = "",
    action: Field = "",
    incident_id: Field = "",
    since: Field = "",
    until: Field = "",
):
    """The audit page's filter as a CSV download (the same columns as the API's)."""
    form = _typed(user=user, action=action, incident_id=incident_id, since=since, until=until)
    return audit_api.csv_response(request.app.state.db, _audit_filter(form))


def _typed(**fields: str) -> dict[str, str]:
    """The filters that were filled in."""
    return {name: value.strip() for name, value in fields.items() if value.strip()}


def _audit_filter(form: dict[str, str]) -> auditlog.Filter:
    """The console's filter form; times are Amsterdam time, as typed."""
    chosen = form.get("incident_id", "")
    if chosen and not chosen.isdigit():
        raise Invalid(_("%(field)s: %(value)s is not a number"), field="incident", value=chosen)
    return auditlog.Filter(
        user=form.get("user"),
        action=form.get("action"),
        incident_id=int(chosen) if chosen else None,
        since=local_moment(form.get("since", ""), "since"),
        until=local_moment(form.get("until", ""), "until"),
    )
