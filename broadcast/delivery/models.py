from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, enum_type, utcnow


class DeliveryState(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed under a lease by one dispatcher
    sent = "sent"
    delivered = "delivered"  # confirmed by a provider callback
    failed = "failed"  # permanent failure or recipient gone
    dead = "dead"  # attempts exhausted
    cancelled = "cancelled"  # superseded by a correction before it went out


FINAL_STATES = (
    DeliveryState.sent,
    DeliveryState.delivered,
    DeliveryState.failed,
    DeliveryState.dead,
    DeliveryState.cancelled,
)


class Delivery(SQLModel, table=True):
    """The outbox row: one update to one target on one channel, at most once by construction."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("update_id", "channel", "target"),
        Index("ix_delivery_due", "channel", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(foreign_key="updates.id", index=True)
    channel: str = Field(max_length=40)
    # "s<subscriber id>", "q<question id>" or a broadcast target of the channel: never personal data
    target: str = Field(max_length=500)
    subscriber_id: int | None = Field(
        default=None, foreign_key="subscribers.id", ondelete="SET NULL"
    )
    question_id: int | None = Field(default=None, foreign_key="questions.id", ondelete="SET NULL")
    language: str = Field(default="nl", max_length=8)
    state: DeliveryState = Field(default=DeliveryState.pending, sa_type=enum_type(DeliveryState))
    attempts: int = 0
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    claim_token: str | None = Field(default=None, max_length=36)
    provider_id: str | None = Field(default=None, max_length=120, index=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class EarlyReceipt(SQLModel, table=True):
    """A provider's status callback that arrived before the send was recorded (the callback can
    beat the dispatcher's write-back); applied as soon as the delivery has its provider id."""

    __tablename__ = "early_receipts"

    provider_id: str = Field(primary_key=True, max_length=120)
    channel: str = Field(max_length=40)
    status: str = Field(max_length=20)
    error: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
