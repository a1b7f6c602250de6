from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

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
from broadcast.incidents import service
from broadcast.incidents.models import Incident, IncidentStatus
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


class IncidentDetail(IncidentOut):
    updates: list[UpdateOut]


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
        "updates": [update_out(u) for u in updates]
    }


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
