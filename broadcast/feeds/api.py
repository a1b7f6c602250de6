"""``/api/v1/feeds``: water-level and warning feeds, for officers and admins only.

``POST /feeds/{id}/poll`` fetches outside any transaction, on the poller's own threads (not the
request thread pool), and answers with the source as ``GET`` does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from broadcast import audit
from broadcast.common import Code, PlainText, stored_id, utcnow
from broadcast.deps import BODY, MAX_ID, ROLE, Id, Officer, SessionDep, errors
from broadcast.feeds import forecast as forecasts
from broadcast.feeds import service
from broadcast.feeds.models import FeedKind, FeedSource, FeedStatus

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])


Url = Annotated[PlainText, Field(max_length=2000)]
Name = Annotated[PlainText, Field(max_length=120)]
Unit = Annotated[PlainText, Field(max_length=30)]
Pattern = Annotated[PlainText, Field(max_length=500)]
JsonPath = Annotated[PlainText, Field(max_length=200)]
Seconds = Annotated[int, Field(ge=0, le=MAX_ID)]  # the service checks the allowed range
Location = Annotated[PlainText, Field(max_length=100)]
AquoCode = Annotated[PlainText, Field(max_length=30)]
Rules = Annotated[list[dict[str, Any]], Field(max_length=50)]


class FeedCreate(BaseModel):
    url: Url = Field(description="http or https address of the feed")
    kind: FeedKind = Field(
        description="level (RSS/Atom), cap (CAP index or alert), json or rws (Rijkswaterstaat)"
    )
    interval_seconds: Seconds = Field(description="Seconds between two polls")
    incident_id: Id | None = Field(
        default=None, description="Incident that fired rules add to; none: a new incident"
    )
    name: Name | None = Field(default=None, description="Station, e.g. Mook")
    unit: Unit | None = Field(default=None, description='Unit readings are kept in: "cm", "m NAP"')
    value_pattern: Pattern | None = Field(
        default=None, description="level: regular expression; group 1 is the value"
    )
    items_path: JsonPath | None = Field(default=None, description='json: dotted path, "data.items"')
    value_path: JsonPath | None = Field(default=None, description="json: path within an item")
    time_path: JsonPath | None = Field(default=None, description="json: ISO-8601 time in an item")
    location: Location | None = Field(
        default=None, description='rws: Rijkswaterstaat location code, e.g. "venlo"'
    )
    quantity: AquoCode | None = Field(default=None, description="rws: Grootheid, default WATHTE")
    reference: AquoCode | None = Field(default=None, description="rws: Hoedanigheid, default NAP")
    areas: list[Code] = Field(
        default=[], max_length=500, description="Area codes of a new incident"
    )
    rules: Rules = Field(
        default=[],
        description='{"above": 1100, "reset_below": 1050, "severity"?, "auto_publish": false}, '
        '{"rise_cm_per_hour": 10}, (rws) {"forecast_peak_above": 1400} or (cap) '
        '{"min_severity": "Severe"}',
    )
    enabled: bool = True


class FeedChange(BaseModel):
    url: Url | None = None
    kind: FeedKind | None = None
    interval_seconds: Seconds | None = None
    incident_id: Id | None = None
    name: Name | None = None
    unit: Unit | None = None
    value_pattern: Pattern | None = None
    items_path: JsonPath | None = None
    value_path: JsonPath | None = None
    time_path: JsonPath | None = None
    location: Location | None = None
    quantity: AquoCode | None = None
    reference: AquoCode | None = None
    areas: Annotated[list[Code], Field(max_length=500)] | None = None
    rules: Rules | None = None
    enabled: bool | None = None


class ReadingOut(BaseModel):
    value: float
    unit: str | None
    observed_at: datetime
    station: str | None = None


class PeakOut(BaseModel):
    value: float
    unit: str | None
    at: datetime


class ForecastPointOut(BaseModel):
    value: float
    at: datetime


class ForecastOut(BaseModel):
    issued_at: datetime = Field(description="when this service first saw this forecast run")
    peak: PeakOut
    points: list[ForecastPointOut]


class FeedOut(BaseModel):
    id: int
    name: str | None
    url: str
    kind: FeedKind
    interval_seconds: int
    enabled: bool
    incident_id: int | None
    areas: list[str]
    unit: str | None
    value_pattern: str | None
    items_path: str | None
    value_path: str | None
    time_path: str | None
    location: str | None = None
    quantity: str | None = None
    reference: str | None = None
    rules: list[dict[str, Any]]
    origin: str = Field(description="api, or config for a [[feeds]] table of the settings file")
    status: FeedStatus
    last_error: str | None
    last_warning: str | None = Field(description="e.g. a bozo feed whose entries were used")
    last_polled_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    alerting: bool = Field(description="officers were alerted: failing many polls in a row")
    latest: ReadingOut | None
    forecast: ForecastOut | None = Field(
        default=None, description="rws: the current forecast run and its expected peak"
    )
    created_at: datetime


class AlertOut(BaseModel):
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    event: str | None
    severity: str | None
    headline: str | None
    areas: list[str]
    expires: datetime | None
    superseded_by: str | None
    update_id: int | None


def feed_out(session, source: FeedSource) -> dict:
    latest = service.latest(session, stored_id(source))
    return source.model_dump() | {
        "origin": "config" if source.config_name else "api",
        "latest": latest.model_dump() if latest else None,
        "forecast": forecasts.current(session, stored_id(source), now=utcnow())
        if source.kind == FeedKind.rws
        else None,
    }


def _limits(request: Request) -> dict:
    settings = request.app.state.settings
    return {
        "min_interval": settings.feed_min_interval_seconds,
        "allow_private": settings.feed_allow_private_addresses,
    }


@router.post(
    "",
    status_code=201,
    response_model=FeedOut,
    summary="Add a feed source",
    responses=errors(*ROLE, *BODY),
)
def create_feed(data: FeedCreate, session: SessionDep, user: Officer, request: Request):
    source = service.create(session, **_limits(request), creator=user, **data.model_dump())
    return feed_out(session, source)


@router.get("", response_model=list[FeedOut], summary="List feed sources", responses=errors(*ROLE))
def list_feeds(session: SessionDep, user: Officer):
    return [feed_out(session, s) for s in service.listing(session)]


@router.get(
    "/{feed_id}",
    response_model=FeedOut,
    summary="A feed source and its health",
    responses=errors(*ROLE, 404, 422),
)
def get_feed(feed_id: Id, session: SessionDep, user: Officer):
    return feed_out(session, service.get(session, feed_id))


@router.patch(
    "/{feed_id}",
    response_model=FeedOut,
    summary="Change a feed source",
    responses=errors(*ROLE, 404, 409, *BODY),
)
def change_feed(
    feed_id: Id, data: FeedChange, session: SessionDep, user: Officer, request: Request
):
    source = service.change(
        session,
        service.get(session, feed_id),
        data.model_dump(exclude_unset=True),
        **_limits(request),
        actor=user,
    )
    return feed_out(session, source)


@router.delete(
    "/{feed_id}",
    status_code=204,
    summary="Remove a feed source and its readings",
    responses=errors(*ROLE, 404, 409, 422),
)
def delete_feed(feed_id: Id, session: SessionDep, user: Officer):
    service.remove(session, service.get(session, feed_id), actor=user)
    return Response(status_code=204)


@router.post(
    "/{feed_id}/poll",
    response_model=FeedOut,
    summary="Poll a feed source now",
    responses=errors(*ROLE, 404, 422),
)
async def poll_feed(feed_id: Id, session: SessionDep, user: Officer, request: Request):
    def check() -> None:
        service.get(session, feed_id)
        audit.record(
            session,
            actor=user.name,
            actor_id=user.id,
            action="feed.poll",
            subject=f"feed:{feed_id}",
        )
        session.commit()  # no transaction (on SQLite: the write lock) is held across the poll

    def answer() -> dict:
        session.expire_all()
        return feed_out(session, service.get(session, feed_id))

    await run_in_threadpool(check)
    await request.app.state.feeds.poll_async(feed_id)
    return await run_in_threadpool(answer)


@router.get(
    "/{feed_id}/readings",
    response_model=list[ReadingOut],
    summary="Readings of a feed source, newest first",
    responses=errors(*ROLE, 404, 422),
)
def feed_readings(
    feed_id: Id,
    session: SessionDep,
    user: Officer,
    limit: int = Query(default=500, ge=1, le=10_000),
    since: datetime | None = None,
):
    service.get(session, feed_id)
    return [r.model_dump() for r in service.readings(session, feed_id, limit=limit, since=since)]


@router.get(
    "/{feed_id}/alerts",
    response_model=list[AlertOut],
    summary="CAP alerts seen on a feed source, newest first",
    responses=errors(*ROLE, 404, 422),
)
def feed_alerts(feed_id: Id, session: SessionDep, user: Officer):
    service.get(session, feed_id)
    return [a.model_dump() for a in service.alerts(session, feed_id)]
