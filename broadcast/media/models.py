from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, enum_type, utcnow


class MediaKind(StrEnum):
    image = "image"
    video = "video"


class MediaItem(SQLModel, table=True):
    """One photo or video of an update. The file lives under ``Settings.media_dir`` as ``name``:
    random, never the uploader's file name."""

    __tablename__ = "media"

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(foreign_key="updates.id", index=True)
    name: str = Field(max_length=64, unique=True)  # stored file name, e.g. "Xk3…q.jpg"
    kind: MediaKind = Field(sa_type=enum_type(MediaKind))
    content_type: str = Field(max_length=40)
    size: int  # bytes, as stored
    width: int | None = None  # images only
    height: int | None = None
    alt: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    uploader_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    def alt_text(self, language: str) -> str:
        return self.alt.get(language) or self.alt.get("nl") or next(iter(self.alt.values()), "")
