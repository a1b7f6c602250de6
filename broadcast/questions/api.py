from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from broadcast import paging
from broadcast.common import PlainText
from broadcast.deps import (
    BODY,
    PAGE_HEADERS,
    PAGED,
    ROLE,
    Cursor,
    Id,
    Limit,
    Officer,
    SessionDep,
    errors,
    next_page,
)
from broadcast.questions import service
from broadcast.questions.models import QuestionState
from broadcast.timeline.api import UpdateOut, update_out

router = APIRouter(prefix="/api/v1/questions", tags=["questions"])


class QuestionOut(BaseModel):
    id: int
    channel: str
    language: str
    text: str
    incident_id: int | None
    state: QuestionState
    received_at: datetime
    answer: str | None
    answered_at: datetime | None
    answer_update_id: int | None
    response_seconds: float | None


class Answer(BaseModel):
    body: PlainText = Field(min_length=1, max_length=4000)
    public: bool = False
    incident_id: Id | None = Field(
        default=None,
        description="For a public answer to a question that came in without an incident",
    )


class Move(BaseModel):
    incident_id: Id | None = Field(description="The incident the question is about; null: none")


def question_out(question) -> dict:
    waited = (
        (question.answered_at - question.received_at).total_seconds()
        if question.answered_at
        else None
    )
    return question.model_dump(exclude={"address"}) | {"response_seconds": waited}


@router.get(
    "",
    response_model=list[QuestionOut],
    responses=PAGE_HEADERS | errors(*ROLE, 422),
    description="Residents' questions (without their addresses)." + PAGED,
)
def list_questions(
    session: SessionDep,
    user: Officer,
    request: Request,
    response: Response,
    state: QuestionState | None = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    found = service.listing(session, state=state, before=paging.decode(cursor), limit=limit)
    page, next_cursor = paging.split(found, limit)
    next_page(request, response, next_cursor)
    return [question_out(q) for q in page]


@router.post(
    "/{question_id}/answer",
    status_code=201,
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def answer_question(
    question_id: Id, data: Answer, session: SessionDep, user: Officer, request: Request
):
    update = service.answer(
        session,
        service.get(session, question_id),
        officer=user,
        body=data.body,
        public=data.public,
        incident_id=data.incident_id,
        channels=request.app.state.channels,
    )
    return update_out(update)


@router.post(
    "/{question_id}/move",
    response_model=QuestionOut,
    responses=errors(*ROLE, 404, *BODY),
    description="Attach the question to another incident (or to none)",
)
def move_question(question_id: Id, data: Move, session: SessionDep, user: Officer):
    question = service.move(
        session, service.get(session, question_id), officer=user, incident_id=data.incident_id
    )
    return question_out(question)
