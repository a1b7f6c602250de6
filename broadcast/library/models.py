from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, utcnow


class StoredTemplate(SQLModel, table=True):
    """An officer's version of a template: a changed one of ``config/templates.toml`` (same
    key), a new one, or (``deleted``) one of the file that is no longer offered. The file
    stays as shipped, so an upgrade that adds templates to it adds them to the console."""

    __tablename__ = "message_templates"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=40)
    severity: str = Field(default="info", max_length=20)
    title: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    deleted: bool = False
    updated_by: str = Field(default="", max_length=120)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
