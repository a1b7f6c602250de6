from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, enum_type, utcnow


class Role(StrEnum):
    admin = "admin"
    officer = "officer"  # communication adviser: publishes, corrects, answers
    volunteer = "volunteer"  # buurtverbinder: proposes updates for approval


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=80)
    display_name: str = Field(default="", max_length=120)
    role: Role = Field(sa_type=enum_type(Role))
    token_hash: str = Field(unique=True, index=True, max_length=64)
    password_hash: str | None = None
    active: bool = True
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def credit_name(self) -> str:
        return self.display_name or self.name


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is stored, so a
    leaked database opens no console. Ended by logging out, by expiry, or by deleting the user."""

    __tablename__ = "console_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)  # sent back in every form and fetch
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
