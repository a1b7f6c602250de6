from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import DEFAULT_LANGUAGE, Language, UTCDateTime, enum_type, utcnow


class QuestionState(StrEnum):
    new = "new"
    answered = "answered"


class Question(SQLModel, table=True):
    """A resident's message to the municipality, from any inbound channel."""

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("channel", "inbound_key", name="uq_questions_channel_inbound_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=40)
    address: str | None = Field(default=None, max_length=500)  # reply address; personal data
    language: Language = Field(default=DEFAULT_LANGUAGE, sa_type=enum_type(Language))
    text: str
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    state: QuestionState = Field(
        default=QuestionState.new, index=True, sa_type=enum_type(QuestionState)
    )
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    reply_to: str | None = Field(default=None, max_length=120)  # provider id it answered to
    inbound_key: str | None = Field(default=None, max_length=120)  # provider id of the message
    answer: str | None = None
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    answered_by: int | None = Field(default=None, foreign_key="users.id")
    answer_update_id: int | None = Field(default=None, foreign_key="updates.id")
