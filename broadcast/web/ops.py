"""Operations endpoints: ``/healthz`` for load balancers, ``/metrics`` for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy import text

from broadcast import metrics

router = APIRouter(tags=["operations"])


class ChannelsHealth(BaseModel):
    on: list[str]
    off: dict[str, str] = Field(description="Channel name: why it is off")


class OutageHealth(BaseModel):
    started_at: str
    ended_at: str | None = Field(description="null while it lasts")
    error: str


class Health(BaseModel):
    status: str = Field(description="ok, or failing when the database does not answer")
    database: str
    database_outage: OutageHealth | None = Field(
        None, description="The database outage going on, else the last one this process saw"
    )
    channels: ChannelsHealth


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
    description="200 when the database answers; lists the channels",
)
async def healthz(request: Request):
    db, channels = request.app.state.db, request.app.state.channels

    try:  # on the read path: a long write (a publish to every subscriber) does not hold it up
        await db.run(lambda session: session.execute(text("SELECT 1")), write=False)
        database = "ok"
    except Exception as exc:
        database = f"unavailable: {type(exc).__name__}"
        db.health.failed(exc)
    outage = db.health.last
    body = {
        "status": "ok" if database == "ok" else "failing",
        "database": database,
        "database_outage": outage
        and {
            "started_at": outage.started_at.isoformat(),
            "ended_at": outage.ended_at and outage.ended_at.isoformat(),
            "error": outage.error,
        },
        "channels": {"on": sorted(channels.active), "off": channels.disabled},
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request):
    scrape = request.app.state.db.run(metrics.exposition, write=False)
    return Response(await scrape, media_type=CONTENT_TYPE_LATEST)
