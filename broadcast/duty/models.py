"""Who is on duty, how an officer is reached outside the console, and which promises were
already reminded of."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, utcnow


class DutyShift(SQLModel, table=True):
    """One take-over: from ``started_at`` the officer is on duty until the next row, so the
    newest is who is on duty now and the rest is the history. Only the note of the shift on
    duty changes: its officer writes it for whoever takes over next."""

    __tablename__ = "duty_shifts"

    id: int | None = Field(default=None, primary_key=True)
    officer_id: int = Field(foreign_key="users.id", index=True)
    note: str = Field(default="", max_length=2000)  # the hand-over note for the next officer
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )


class OfficerChat(SQLModel, table=True):
    """An officer's own chat with the bot, for reminders. A one-time code (its hash) links it:
    the officer sends ``/koppel <code>`` to the bot."""

    __tablename__ = "officer_chats"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    channel: str = Field(default="telegram", max_length=40)
    address: str | None = Field(default=None, max_length=120)  # the chat id once linked
    code_hash: str | None = Field(default=None, max_length=64, index=True)
    code_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    linked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class PromiseReminder(SQLModel, table=True):
    """A reminder sent for one promise (incident and due time): never a second one, across
    restarts and leaders. A changed promise is another due time, so it is reminded again."""

    __tablename__ = "promise_reminders"
    __table_args__ = (UniqueConstraint("incident_id", "due", name="uq_promise_reminders_promise"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    due: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
