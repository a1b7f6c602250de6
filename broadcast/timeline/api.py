from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from broadcast.common import Code, PlainText, Severity
from broadcast.delivery import queue
from broadcast.deps import AUTH, BODY, ROLE, Id, Member, Officer, SessionDep, errors
from broadcast.errors import NotFound
from broadcast.incidents import service as incidents
from broadcast.timeline import service
from broadcast.timeline.models import Source, Update, UpdateKind, UpdateState

router = APIRouter(prefix="/api/v1", tags=["updates"])

BodyText = Annotated[PlainText, Field(max_length=service.MAX_BODY_CHARS)]
Body = BodyText | dict[Code, BodyText]


class UpdateCreate(BaseModel):
    body: Body = Field(description='Text, or {"nl": "...", "en": "..."}')
    severity: Severity | None = None
    areas: list[Code] | None = Field(
        default=None, max_length=500, description="Area codes; default: the incident's"
    )
    channels: list[Code] | None = Field(
        default=None, max_length=50, description="Channel names; default: all"
    )
    publish_at: datetime | None = None
    next_update_due: datetime | None = None
    draft: bool = Field(
        default=False,
        description="Store as a draft; publish later by approving. A volunteer's update always "
        "waits for an officer's approval (`pending_approval`), draft or not.",
    )


class UpdateOut(BaseModel):
    id: int
    incident_id: int | None
    kind: UpdateKind
    state: UpdateState
    body: dict[str, str]
    severity: Severity
    areas: list[str]
    channels: list[str] | None
    publish_at: datetime | None
    published_at: datetime | None
    next_update_due: datetime | None
    source: Source
    credit: str | None
    supersedes: int | None
    superseded_by: int | None
    reason: str | None
    created_at: datetime


class Correction(BaseModel):
    body: Body
    next_update_due: datetime | None = None


class Reason(BaseModel):
    reason: PlainText = Field(min_length=1, max_length=2000)


class OptionalReason(BaseModel):
    reason: PlainText | None = Field(default=None, max_length=2000)


def update_out(update: Update) -> dict:
    return update.model_dump() | {
        "supersedes": update.supersedes_id,
        "superseded_by": update.superseded_by_id,
    }


@router.post(
    "/incidents/{incident_id}/updates",
    status_code=201,
    response_model=UpdateOut,
    responses=errors(*AUTH, 404, 409, *BODY),
)
def post_update(
    incident_id: Id, data: UpdateCreate, session: SessionDep, user: Member, request: Request
):
    incident = incidents.get(session, incident_id)
    update = service.post(
        session,
        incident,
        author=user,
        body=data.body,
        channels=request.app.state.channels,
        severity=data.severity,
        areas_=data.areas,
        channel_names=data.channels,
        publish_at=data.publish_at,
        next_update_due=data.next_update_due,
        draft=data.draft,
    )
    return update_out(update)


@router.get("/updates/{update_id}", response_model=UpdateOut, responses=errors(*AUTH, 404, 422))
def get_update(update_id: Id, session: SessionDep, user: Member):
    update = service.get(session, update_id)
    if not service.visible_to(update, user):
        raise NotFound(f"update {update_id} not found")
    return update_out(update)


@router.post(
    "/updates/{update_id}/approve",
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, 422),
)
def approve(update_id: Id, session: SessionDep, user: Officer, request: Request):
    update = service.approve(
        session, service.get(session, update_id), officer=user, channels=request.app.state.channels
    )
    return update_out(update)


@router.post(
    "/updates/{update_id}/reject",
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def reject(update_id: Id, session: SessionDep, user: Officer, data: OptionalReason | None = None):
    update = service.reject(
        session, service.get(session, update_id), officer=user, reason=data.reason if data else None
    )
    return update_out(update)


@router.post(
    "/updates/{update_id}/correct",
    status_code=201,
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def correct(update_id: Id, data: Correction, session: SessionDep, user: Officer, request: Request):
    correction = service.correct(
        session,
        service.get(session, update_id),
        officer=user,
        body=data.body,
        channels=request.app.state.channels,
        next_update_due=data.next_update_due,
    )
    return update_out(correction)


@router.post(
    "/updates/{update_id}/retract",
    status_code=201,
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def retract(update_id: Id, data: Reason, session: SessionDep, user: Officer, request: Request):
    notice = service.retract(
        session,
        service.get(session, update_id),
        officer=user,
        reason=data.reason,
        channels=request.app.state.channels,
    )
    return update_out(notice)


@router.get(
    "/updates/{update_id}/deliveries",
    response_model=dict[str, dict[str, int]],
    responses=errors(*ROLE, 404, 422),
    description='Counts per channel and state: {"telegram": {"sent": 120, "failed": 2}}',
)
def deliveries(update_id: Id, session: SessionDep, user: Officer):
    service.get(session, update_id)
    return queue.counts_by_state(session, update_id)


@router.post(
    "/updates/{update_id}/resend-failed",
    responses=errors(*ROLE, 404, 422),
    description="Re-queue only the failed and dead deliveries of this update",
)
def resend_failed(update_id: Id, session: SessionDep, user: Officer) -> dict[str, int]:
    return {"requeued": service.resend_failed(session, service.get(session, update_id), user)}
