from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from broadcast import paging
from broadcast.common import Code, PlainText, Severity, stored_id, utcnow
from broadcast.deps import (
    AUTH,
    BODY,
    PAGE_HEADERS,
    PAGED,
    ROLE,
    CurrentUser,
    Cursor,
    Id,
    Limit,
    Officer,
    SessionDep,
    errors,
    next_page,
)
from broadcast.incidents import instructions, service
from broadcast.incidents.models import Incident, IncidentStatus, Instruction
from broadcast.timeline import service as timeline
from broadcast.timeline.api import Body, UpdateOut, update_out

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


class IncidentCreate(BaseModel):
    title: PlainText = Field(min_length=1, max_length=200)
    severity: Severity
    areas: list[Code] = Field(default=[], max_length=500)
    exercise: bool = False
    exercise_widened: bool = Field(
        default=False,
        description="An exercise reaches only the test audience (subscribers marked as testers, "
        "and the public pages with the exercise mark); true sends it to everyone, marked.",
    )


class IncidentOut(BaseModel):
    id: int
    slug: str
    title: str
    severity: Severity
    status: IncidentStatus
    areas: list[str]
    exercise: bool
    exercise_widened: bool
    next_update_due: datetime | None
    overdue: bool
    created_at: datetime
    resolved_at: datetime | None
    url: str


class PreviousInstruction(BaseModel):
    version: int
    body: dict[str, str]
    created_at: datetime


class InstructionOut(BaseModel):
    """The pinned instruction "Wat moet u nu doen" as it stands, and the version it replaced."""

    version: int = Field(description="Every pin, change and clear is a new version")
    body: dict[str, str] = Field(description='{"nl": "...", "en": "..."}')
    created_at: datetime = Field(description="When this version was pinned")
    previous: PreviousInstruction | None = Field(
        description="The text it replaced (shown publicly as a change), or null"
    )


class InstructionIn(BaseModel):
    body: (
        Annotated[PlainText, Field(max_length=instructions.MAX_CHARS)]
        | dict[Code, Annotated[PlainText, Field(max_length=instructions.MAX_CHARS)]]
    ) = Field(
        description=f'Text, or {{"nl": "...", "en": "..."}}; Dutch required, at most '
        f"{instructions.MAX_CHARS} characters per language, no template blanks (`[weg]`)"
    )


class IncidentDetail(IncidentOut):
    updates: list[UpdateOut]
    instruction: InstructionOut | None = Field(
        description='The pinned instruction ("Wat moet u nu doen"), or null'
    )


class Resolve(BaseModel):
    body: Body


def incident_out(incident: Incident, public_url: str) -> dict:
    return incident.model_dump() | {
        "overdue": incident.is_overdue(utcnow()),
        "url": f"{public_url.rstrip('/')}/incidents/{incident.slug}",
    }


@router.post("", status_code=201, response_model=IncidentOut, responses=errors(*ROLE, *BODY))
def create_incident(data: IncidentCreate, session: SessionDep, user: Officer, request: Request):
    incident = service.create(
        session,
        title=data.title,
        severity=data.severity,
        area_codes=data.areas,
        exercise=data.exercise,
        exercise_widened=data.exercise_widened,
        creator=user,
    )
    return incident_out(incident, request.app.state.settings.public_url)


@router.get(
    "",
    response_model=list[IncidentOut],
    responses=PAGE_HEADERS | errors(*AUTH, 422),
    description="The incidents." + PAGED,
)
def list_incidents(
    session: SessionDep,
    user: CurrentUser,
    request: Request,
    response: Response,
    include_resolved: bool = True,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    url = request.app.state.settings.public_url
    found = service.listing(
        session, include_resolved=include_resolved, before=paging.decode(cursor), limit=limit
    )
    page, next_cursor = paging.split(found, limit)
    next_page(request, response, next_cursor)
    return [incident_out(i, url) for i in page]


@router.get("/{incident_id}", response_model=IncidentDetail, responses=errors(*AUTH, 404, 422))
def get_incident(incident_id: Id, session: SessionDep, user: CurrentUser, request: Request):
    incident = service.get(session, incident_id)
    updates = timeline.for_incident(session, stored_id(incident), viewer=user)
    return incident_out(incident, request.app.state.settings.public_url) | {
        "updates": [update_out(u) for u in updates],
        "instruction": instruction_out(session, instructions.current(session, incident_id)),
    }


def instruction_out(session: Session, pinned: Instruction | None) -> dict | None:
    if pinned is None:
        return None
    before = instructions.previous(session, pinned)
    return {
        "version": pinned.version,
        "body": pinned.body,
        "created_at": pinned.created_at,
        "previous": before.model_dump(include={"version", "body", "created_at"})
        if before
        else None,
    }


@router.put(
    "/{incident_id}/instruction",
    response_model=InstructionOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def pin_instruction(incident_id: Id, data: InstructionIn, session: SessionDep, user: Officer):
    """Pin the instruction, or change it: a new version, shown as changed on the public page
    with the previous text readable. The same text again is no change."""
    incident = service.get(session, incident_id)
    pinned = instructions.pin(session, incident, body=data.body, officer=user)
    return instruction_out(session, pinned)


@router.delete("/{incident_id}/instruction", status_code=204, responses=errors(*ROLE, 404, 422))
def clear_instruction(incident_id: Id, session: SessionDep, user: Officer) -> Response:
    """Take the instruction down (a new, empty version); nothing pinned: 204 all the same."""
    instructions.clear(session, service.get(session, incident_id), officer=user)
    return Response(status_code=204)


@router.get(
    "/{incident_id}/updates",
    response_model=list[UpdateOut],
    responses=PAGE_HEADERS | errors(*AUTH, 404, 422),
    description="The incident's updates the caller may see (drafts and proposals for "
    "officers, a volunteer's own proposals)." + PAGED,
)
def list_updates(
    incident_id: Id,
    session: SessionDep,
    user: CurrentUser,
    request: Request,
    response: Response,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    incident = service.get(session, incident_id)
    found = timeline.for_incident(
        session, stored_id(incident), viewer=user, before=paging.decode(cursor), limit=limit
    )
    page, next_cursor = paging.split(found, limit)
    next_page(request, response, next_cursor)
    return [update_out(u) for u in page]


@router.post(
    "/{incident_id}/resolve",
    status_code=201,
    response_model=UpdateOut,
    responses=errors(*ROLE, 404, 409, *BODY),
)
def resolve_incident(
    incident_id: Id, data: Resolve, session: SessionDep, user: Officer, request: Request
):
    incident = service.get(session, incident_id)
    update = service.resolve(
        session, incident, officer=user, body=data.body, channels=request.app.state.channels
    )
    return update_out(update)
