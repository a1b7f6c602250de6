from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from broadcast.common import DEFAULT_LANGUAGE, Language, UTCDateTime, enum_type, utcnow


class SmsSignup(SQLModel, table=True):
    """One code sent for a web sign-up by SMS (double opt-in). The number and the client's IP
    address are kept only as keyed hashes, the code only as a salted hash; a row serves the
    rate limits for an hour and is deleted after that."""

    __tablename__ = "sms_signups"

    id: int | None = Field(default=None, primary_key=True)
    phone_key: str = Field(max_length=64, index=True)
    client_key: str = Field(max_length=64, index=True)
    code_hash: str = Field(max_length=64)
    salt: str = Field(max_length=32)
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    language: Language = Field(default=DEFAULT_LANGUAGE, sa_type=enum_type(Language))
    attempts: int = 0  # wrong codes entered
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
