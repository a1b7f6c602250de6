"""Who did what, when: one append-only row per state change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, select

from broadcast.common import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    actor_id: int | None = Field(default=None, index=True)
    actor: str = Field(max_length=120)  # user name, "scheduler", "feed:3", "resident"
    action: str = Field(max_length=60)  # "update.publish", "incident.resolve", ...
    subject: str = Field(max_length=60)  # "update:12"
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    actor_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(actor=actor, actor_id=actor_id, action=action, subject=subject, detail=detail)
    )


def recent(session: Session, *, limit: int = 100, subject: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if subject:
        query = query.where(AuditEvent.subject == subject)
    return list(session.exec(query))
