"""Residents' questions, with response-time figures, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from broadcast import audit
from broadcast.console import stats
from broadcast.console.pages.common import Line, Text, back_to, perform, show_page
from broadcast.console.session import OfficerDep, Viewer
from broadcast.deps import Id, SessionDep
from broadcast.errors import DomainError
from broadcast.i18n import _
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


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, session: SessionDep, viewer: OfficerDep):
    return show_page(request, "console/audit.html", viewer, events=audit.recent(session, limit=200))
