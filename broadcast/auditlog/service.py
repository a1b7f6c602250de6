"""The audit log, filtered. An incident's events are those about the incident itself, its
updates and the questions attached to it. The CSV holds what the log holds: user names, codes
and row ids, never a resident's address or message (the log never records those)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from broadcast import paging
from broadcast.audit import AuditEvent
from broadcast.questions.models import Question
from broadcast.timeline.models import Update

CSV_COLUMNS = ("id", "at", "actor", "actor_id", "action", "subject", "detail")
CSV_BATCH = 500


@dataclass(frozen=True)
class Filter:
    user: str | None = None  # the actor's name ("adviseur", "scheduler", "feed:3")
    action: str | None = None  # a code ("update.publish"), or its kind ("update": all of them)
    incident_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def events(
    session: Session, chosen: Filter, *, before: int | None = None, limit: int | None = None
) -> list[AuditEvent]:
    """Newest first; ``before``/``limit``: one page (see ``broadcast.paging``)."""
    query = paging.keyset(_query(session, chosen), AuditEvent.id, before=before, limit=limit)
    return list(session.exec(query))


def csv_rows(session: Session, chosen: Filter) -> Iterator[str]:
    """The filtered log as CSV lines, newest first, read in batches (never all in memory)."""
    yield _line(CSV_COLUMNS)
    before = None
    while batch := events(session, chosen, before=before, limit=CSV_BATCH):
        for event in batch[:CSV_BATCH]:
            yield _line(
                (
                    event.id,
                    event.at.isoformat(),
                    event.actor,
                    event.actor_id if event.actor_id is not None else "",
                    event.action,
                    event.subject,
                    json.dumps(event.detail, ensure_ascii=False, sort_keys=True, default=str),
                )
            )
        if len(batch) <= CSV_BATCH:
            return
        before = batch[CSV_BATCH - 1].id


def actions_in_use(session: Session) -> list[str]:
    return list(session.exec(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def _query(session: Session, chosen: Filter) -> SelectOfScalar[AuditEvent]:
    query = select(AuditEvent)
    if chosen.user:
        query = query.where(AuditEvent.actor == chosen.user)
    if chosen.action:
        kind = chosen.action.rstrip(".")
        query = query.where(
            or_(AuditEvent.action == kind, col(AuditEvent.action).startswith(kind + "."))
        )
    if chosen.incident_id is not None:
        query = query.where(col(AuditEvent.subject).in_(_subjects(session, chosen.incident_id)))
    if chosen.since is not None:
        query = query.where(col(AuditEvent.at) >= chosen.since)
    if chosen.until is not None:
        query = query.where(col(AuditEvent.at) < chosen.until)
    return query


def _subjects(session: Session, incident_id: int) -> list[str]:
    updates = session.exec(select(Update.id).where(Update.incident_id == incident_id))
    asked = session.exec(select(Question.id).where(Question.incident_id == incident_id))
    return (
        [f"incident:{incident_id}"]
        + [f"update:{i}" for i in updates]
        + [f"question:{i}" for i in asked]
    )


def _line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()
