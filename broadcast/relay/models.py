from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, utcnow


class Relay(SQLModel, table=True):
    """A volunteer forwarded an update somewhere (a WhatsApp group, a Facebook page, …), so the
    adviser sees which neighbourhoods were reached beyond the service's own channels."""

    __tablename__ = "relays"

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(foreign_key="updates.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    format: str = Field(max_length=20)  # a relay kit format key: whatsapp, facebook, …
    place: str | None = Field(default=None, max_length=200)  # "WhatsApp-groep Molenhoek-Noord"
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
