from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import DEFAULT_LANGUAGE, Language, Severity, UTCDateTime, enum_type, utcnow


class SubscriberState(StrEnum):
    pending = "pending"  # double opt-in not yet confirmed
    active = "active"
    unsubscribed = "unsubscribed"
    gone = "gone"  # blocked the bot, replied STOP, number invalid


# Residents who opted out (STOP, unsubscribe) or whose address is gone: nothing reaches them,
# not even the correction of something they received before.
OPTED_OUT = (SubscriberState.unsubscribed, SubscriberState.gone)


class Subscriber(SQLModel, table=True):
    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=40)
    address: str = Field(max_length=500)  # personal data: never logged
    language: Language = Field(default=DEFAULT_LANGUAGE, sa_type=enum_type(Language))
    min_severity: Severity = Field(default=Severity.info, sa_type=enum_type(Severity))
    state: SubscriberState = Field(
        default=SubscriberState.active, index=True, sa_type=enum_type(SubscriberState)
    )
    consent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    tester: bool = False  # in the test audience of exercises
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class SubscriberArea(SQLModel, table=True):
    __tablename__ = "subscriber_areas"

    subscriber_id: int = Field(foreign_key="subscribers.id", primary_key=True, ondelete="CASCADE")
    area_code: str = Field(foreign_key="areas.code", primary_key=True, index=True, max_length=60)
