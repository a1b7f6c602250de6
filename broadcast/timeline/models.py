from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from broadcast.common import Severity, UTCDateTime, enum_type, utcnow


class UpdateKind(StrEnum):
    update = "update"
    correction = "correction"
    retraction = "retraction"
    all_clear = "all_clear"
    answer = "answer"


class UpdateState(StrEnum):
    draft = "draft"
    pending_approval = "pending_approval"
    scheduled = "scheduled"
    published = "published"
    rejected = "rejected"
    retracted = "retracted"


class Source(StrEnum):
    officer = "officer"
    volunteer = "volunteer"
    feed = "feed"
    resident = "resident"


class Update(SQLModel, table=True):
    """One entry of an incident's timeline. Once published its content never changes."""

    __tablename__ = "updates"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    kind: UpdateKind = Field(default=UpdateKind.update, sa_type=enum_type(UpdateKind))
    state: UpdateState = Field(sa_type=enum_type(UpdateState), index=True)
    body: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    severity: Severity = Field(sa_type=enum_type(Severity))
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    channels: list[str] | None = Field(default=None, sa_column=Column(JSON))  # None = every channel
    public: bool = True  # False: a private answer to one resident, never on the timeline
    publish_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, index=True))
    next_update_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    source: Source = Field(default=Source.officer, sa_type=enum_type(Source))
    author_id: int | None = Field(default=None, foreign_key="users.id")
    credit: str | None = Field(default=None, max_length=120)
    supersedes_id: int | None = Field(default=None, foreign_key="updates.id")
    superseded_by_id: int | None = Field(default=None, foreign_key="updates.id")
    reason: str | None = None  # why it was rejected or retracted
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    decided_by: int | None = Field(default=None, foreign_key="users.id")
