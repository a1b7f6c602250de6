"""Incidents: open one, list them, resolve one with an all-clear that reaches everyone."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import and_
from sqlmodel import Session, col, select

from broadcast import audit, paging
from broadcast.areas import service as areas
from broadcast.auth.models import User
from broadcast.common import Severity, stored_id, utcnow
from broadcast.db import emit
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.i18n import _
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80] or "incident"


def create(
    session: Session,
    *,
    title: str,
    severity: str,
    area_codes: list[str],
    exercise: bool = False,
    exercise_widened: bool = False,
    creator: User | None = None,
) -> Incident:
    title = title.strip()
    if not title:
        raise Invalid(_("the title must not be empty"))
    base = f"{utcnow():%Y-%m-%d}-{slugify(title)}"
    slug, n = base, 1
    while session.exec(select(Incident.id).where(Incident.slug == slug)).first():
        n += 1
        slug = f"{base}-{n}"
    incident = Incident(
        title=title,
        slug=slug,
        severity=Severity(severity),
        areas=areas.check_codes(session, area_codes),
        exercise=exercise,
        exercise_widened=exercise and exercise_widened,
        created_by=creator.id if creator else None,
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor=creator.name if creator else "system",
        actor_id=creator.id if creator else None,
        action="incident.create",
        subject=f"incident:{incident.id}",
        title=title,
        exercise=exercise,
        widened=exercise and exercise_widened,
    )
    emit(session, "public", slug=incident.slug)  # the status page lists it from now on
    return incident


def get(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(_("incident %(id)s not found"), id=incident_id)
    return incident


def by_slug(session: Session, slug: str) -> Incident:
    incident = session.exec(select(Incident).where(Incident.slug == slug)).first()
    if incident is None:
        raise NotFound(_("incident %(slug)s not found"), slug=repr(slug))
    return incident


def overdue(now: datetime):
    """Open incidents whose promised next update is late (``Incident.is_overdue``, in SQL)."""
    return and_(
        col(Incident.status) != IncidentStatus.resolved, col(Incident.next_update_due) < now
    )


def listing(
    session: Session,
    *,
    include_resolved: bool = True,
    before: int | None = None,
    limit: int | None = None,
) -> list[Incident]:
    """Newest first; ``before``/``limit``: one page (see ``broadcast.paging``)."""
    query = paging.keyset(select(Incident), Incident.id, before=before, limit=limit)
    if not include_resolved:
        query = query.where(Incident.status != IncidentStatus.resolved)
    return list(session.exec(query))


def resolve(
    session: Session, incident: Incident, *, officer: User, body: str | dict, channels: ChannelSet
) -> Update:
    """The all-clear goes to every area of the incident; no further update is promised."""
    if incident.status == IncidentStatus.resolved:
        raise Conflict(_("the incident is resolved already"))
    update = timeline.post(
        session, incident, author=officer, body=body, channels=channels, kind=UpdateKind.all_clear
    )
    incident.status, incident.resolved_at = IncidentStatus.resolved, utcnow()
    incident.next_update_due = None
    session.add(incident)
    withdrawn = timeline.withdraw_unpublished(session, stored_id(incident), officer=officer)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="incident.resolve",
        subject=f"incident:{incident.id}",
        withdrawn=withdrawn,
    )
    return update
