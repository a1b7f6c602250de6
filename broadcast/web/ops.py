"""Operations endpoints: ``/healthz`` for load balancers, ``/metrics`` for Prometheus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy import text

from broadcast import metrics

router = APIRouter(tags=["operations"])
PROBE_INTERVAL = 1.0  # seconds: the database is asked at most this often, however many probe


class DatabaseProbe:
    """One answer to "does the database answer?" shared by every ``/healthz`` call: at most one
    query per ``interval``, and callers that arrive while it runs await the same result. A burst
    of probes from load balancers (or residents) thus costs the database one ``SELECT 1``."""

    def __init__(
        self,
        query: Callable[[], Awaitable[object]],
        *,
        interval: float = PROBE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.query, self.interval, self.clock = query, interval, clock
        self.queries = 0  # how many times the database was asked (tests count them)
        self._answer: tuple[float, str] | None = None  # (asked at, "ok" or why not)
        self._running: asyncio.Future[str] | None = None

    async def status(self) -> str:
        if self._answer is not None and self.clock() - self._answer[0] < self.interval:
            return self._answer[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._ask())
        return await asyncio.shield(self._running)  # a caller that goes away stops no probe

    async def _ask(self) -> str:
        asked_at = self.clock()
        self.queries += 1
        try:
            await self.query()
            answer = "ok"
        except Exception as exc:
            answer = f"unavailable: {type(exc).__name__}"
        finally:
            self._running = None
        self._answer = (asked_at, answer)
        return answer


def _select_one(session) -> None:
    session.execute(text("SELECT 1")).all()


def probe_of(app) -> DatabaseProbe:
    """The app's shared probe (made on first use)."""
    if (probe := getattr(app.state, "database_probe", None)) is None:
        db = app.state.db
        # on the read path: a long write (a publish to every subscriber) does not hold it up
        probe = app.state.database_probe = DatabaseProbe(lambda: db.run(_select_one, write=False))
    return probe


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
    lanes_owned: list[str] | None = Field(
        None,
        description=(
            "The paced channels (a rate or a per-target interval) this process sends now: on "
            "PostgreSQL one process at a time owns each; null when this process does not dispatch"
        ),
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
    description=(
        "200 when the database answers (asked at most once a second, the answer shared by "
        "every caller); lists the channels"
    ),
)
async def healthz(request: Request):
    db, channels = request.app.state.db, request.app.state.channels
    database = await probe_of(request.app).status()
    if database != "ok":
        db.health.failed(database.removeprefix("unavailable: "))
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
        "lanes_owned": lanes_owned(request.app),
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


def lanes_owned(app) -> list[str] | None:
    services = getattr(app.state, "services", None)
    dispatcher = services and services.dispatcher
    return dispatcher.owned if dispatcher else None


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request):
    scrape = request.app.state.db.run(metrics.exposition, write=False)
    return Response(await scrape, media_type=CONTENT_TYPE_LATEST)
