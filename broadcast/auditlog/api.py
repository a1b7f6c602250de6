from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from broadcast import paging
from broadcast.auditlog import service
from broadcast.common import PlainText
from broadcast.db import Database
from broadcast.deps import ROLE, Cursor, Id, Limit, Officer, SessionDep, errors

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description='User name, or "scheduler", "feed:3", "resident", "cli"')
    actor_id: int | None
    action: str = Field(description='"update.publish", "user.deactivate", ...')
    subject: str = Field(description='"update:12", "incident:3", "user:2"')
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(description="The `cursor` of the next page; null: the last")


def audit_filter(
    user: Annotated[PlainText | None, Query(max_length=120, description="Actor name")] = None,
    action: Annotated[
        PlainText | None,
        Query(max_length=60, description='A code, or its kind: "update" is every update.*'),
    ] = None,
    incident_id: Annotated[
        Id | None, Query(description="Events of the incident, its updates and questions")
    ] = None,
    since: Annotated[datetime | None, Query(description="From (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Until (exclusive)")] = None,
) -> service.Filter:
    return service.Filter(
        user=user, action=action, incident_id=incident_id, since=since, until=until
    )


CSV_RESPONSE: dict[int | str, dict] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "A page (JSON), or with `Accept: text/csv` the whole filtered log as CSV "
        f"({', '.join(service.CSV_COLUMNS)}), newest first",
    }
}


@router.get(
    "",
    response_model=AuditPage,
    responses=CSV_RESPONSE | errors(*ROLE, 422),
    description="Who did what, when; officers and admins. Filters combine (and). Newest first, "
    f"paginated by cursor (`limit` default {paging.DEFAULT_LIMIT}, at most {paging.MAX_LIMIT}). "
    "It holds no personal data of residents.",
)
def list_audit(
    request: Request,
    session: SessionDep,
    user: Officer,
    chosen: Annotated[service.Filter, Depends(audit_filter)],
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
    accept: Annotated[str, Header(include_in_schema=False)] = "",
):
    if "text/csv" in accept:
        return csv_response(request.app.state.db, chosen)
    found = service.events(session, chosen, before=paging.decode(cursor), limit=limit)
    page, next_cursor = paging.split(found, limit)
    return {"items": [e.model_dump() for e in page], "next_cursor": next_cursor}


def csv_response(db: Database, chosen: service.Filter) -> StreamingResponse:
    """The filtered log as a CSV download (also the console's ``/console/audit.csv``), read in
    a transaction of its own while it streams (the request's has ended by then)."""

    def lines() -> Iterator[str]:
        with db.session_scope() as session:
            yield from service.csv_rows(session, chosen)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
