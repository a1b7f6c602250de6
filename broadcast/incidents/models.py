from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import Severity, UTCDateTime, enum_type, utcnow


class IncidentStatus(StrEnum):
    active = "active"
    monitoring = "monitoring"
    resolved = "resolved"


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=120)
    title: str = Field(max_length=200)
    severity: Severity = Field(sa_type=enum_type(Severity))
    status: IncidentStatus = Field(default=IncidentStatus.active, sa_type=enum_type(IncidentStatus))
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    exercise: bool = False
    # An exercise reaches only its test audience (subscribers marked as testers, and the public
    # page with its exercise mark) unless an officer widened it to everyone.
    exercise_widened: bool = False
    next_update_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_by: int | None = Field(default=None, foreign_key="users.id")

    def is_overdue(self, now: datetime) -> bool:
        return (
            self.status != IncidentStatus.resolved
            and self.next_update_due is not None
            and self.next_update_due < now
        )


class Instruction(SQLModel, table=True):
    """One version of an incident's pinned instruction, "Wat moet u nu doen". Every change is a
    new row (a correction in the open: the previous version stays readable); a version without
    text clears it. Rows are never edited."""

    __tablename__ = "instructions"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_instruction_version"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    version: int
    body: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    author_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def cleared(self) -> bool:
        return not self.body

    def text(self, language: str) -> str:
        return self.body.get(language) or self.body.get("nl") or ""
