"""Residents' questions, with response-time figures, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from broadcast import audit
from broadcast.console import stats
from broadcast.console.pages.common import (
    Text,
    perform,
    show_page,
)
from broadcast.console.session import OfficerDep
from broadcast.deps import Id, SessionDep
from broadcast.i18n import _
from broadcast.incidents import service as incidents
from broadcast.questions import service as questions
from broadcast.questions.models import QuestionState

router = APIRouter()


# --- questions -----------------------------------------------------------------------------


@router.get("/questions", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, viewer: OfficerDep, state: str = "new"):
    chosen = QuestionState.answered if state == "answered" else QuestionState.new
    listed = questions.listing(session, state=chosen)
    return show_page(
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
    question_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    body: Text,
    public: Annotated[bool, Form()] = False,
    incident_id: Annotated[Id | None, Form()] = None,
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
    return perform(request, session, work, fallback="/console/questions", done=done)


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, session: SessionDep, viewer: OfficerDep):
    return show_page(request, "console/audit.html", viewer, events=audit.recent(session, limit=200))
