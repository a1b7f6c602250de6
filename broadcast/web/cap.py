"""CAP output: ``/updates/{id}.cap`` (one published update as a CAP 1.2 alert) and ``/cap.atom``
(the alerts currently in force: published updates of open incidents that nothing superseded,
and the all-clear of an incident resolved in the last day)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session, col, or_, select

from broadcast.areas.models import Area
from broadcast.common import utcnow
from broadcast.deps import Id, errors
from broadcast.errors import NotFound
from broadcast.i18n import _
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind, UpdateState
from broadcast.web import capout
from broadcast.web.cache import cached

router = APIRouter(tags=["cap"])
INDEX_SIZE = 100
ALL_CLEAR_SHOWN = timedelta(days=1)
CAP_TYPE = "application/cap+xml"
CAP_DOCUMENT: dict[int | str, dict] = {200: {"content": {CAP_TYPE: {}}}}


def publisher(request: Request) -> capout.Publisher:
    settings = request.app.state.settings
    return capout.Publisher(settings.public_url, settings.municipality, settings.cap_sender)


def references(session: Session, update: Update) -> list[Update]:
    if update.supersedes_id is not None:
        original = session.get(Update, update.supersedes_id)
        return [original] if original is not None and capout.is_cap_alert(original) else []
    if update.kind != UpdateKind.all_clear:
        return []
    earlier = session.exec(
        select(Update).where(
            Update.incident_id == update.incident_id,
            Update.state == UpdateState.published,
            col(Update.superseded_by_id).is_(None),
            Update.id != update.id,
            col(Update.published_at) <= update.published_at,
        )
    ).all()
    return [u for u in earlier if capout.is_cap_alert(u)]


def _areas(session: Session) -> tuple[dict[str, str], dict[str, list[str]]]:
    found = session.exec(select(Area)).all()
    return {a.code: a.name for a in found}, {a.code: list(a.postcodes) for a in found}


@router.get(
    "/updates/{update_id}.cap",
    summary="A published update as a CAP 1.2 alert",
    response_class=Response,
    responses=CAP_DOCUMENT | errors(404, 422),
)
async def cap_alert(update_id: Id, request: Request):
    return await cached(request, lambda: _alert(request, update_id))


async def _alert(request: Request, update_id: int) -> tuple[bytes, str]:
    who = publisher(request)

    def work(session):
        update = session.get(Update, update_id)
        if update is None or not capout.is_cap_alert(update) or update.incident_id is None:
            raise NotFound(_("update %(id)s is not a published alert"), id=update_id)
        incident = session.get(Incident, update.incident_id)
        names, postcodes = _areas(session)
        return capout.alert_document(
            update,
            incident,
            publisher=who,
            references=references(session, update),
            area_names=names,
            postcodes=postcodes,
        )

    return await request.app.state.db.run(work, write=False), CAP_TYPE


@router.get(
    "/cap.atom",
    summary="Atom index of the CAP alerts in force",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}},
)
async def cap_index(request: Request):
    return await cached(request, lambda: _index(request))


async def _index(request: Request) -> tuple[bytes, str]:
    who = publisher(request)
    now = utcnow()

    def work(session):
        rows = session.exec(
            timeline.published_public()
            .where(
                Update.kind != UpdateKind.answer,
                col(Update.superseded_by_id).is_(None),
                or_(
                    Incident.status != IncidentStatus.resolved,
                    (Update.kind == UpdateKind.all_clear)
                    & (col(Incident.resolved_at) >= now - ALL_CLEAR_SHOWN),
                ),
            )
            .limit(INDEX_SIZE)
        ).all()
        names, _ = _areas(session)
        entries = [(u, i, references(session, u)) for u, i in rows]
        return capout.index_document(entries, publisher=who, area_names=names, updated=now)

    return await request.app.state.db.run(work, write=False), "application/atom+xml"
