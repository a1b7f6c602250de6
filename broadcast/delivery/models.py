from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
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
        UniqueConstraint("update_id", "channel", "target"),  # also the index on update_id
        # Claiming walks these (broadcast/delivery/queue.py): the backlog by due time, and the
        # direct messages (the bot's answers) in a partial index of their own.
        Index("ix_delivery_due", "channel", "state", "next_attempt_at", "id"),
        Index(
            "ix_delivery_direct_due",
            "channel",
            "state",
            "next_attempt_at",
            "id",
            sqlite_where=text("direct_message_id IS NOT NULL"),
            postgresql_where=text("direct_message_id IS NOT NULL"),
        ),
        # Partial: most rows have neither, and a publish to 1,000,000 would index 1,000,000 NULLs.
        Index(
            "ix_deliveries_provider_id",
            "provider_id",
            postgresql_where=text("provider_id IS NOT NULL"),
            sqlite_where=text("provider_id IS NOT NULL"),
        ),
        Index(
            "ix_deliveries_direct_message_id",
            "direct_message_id",
            postgresql_where=text("direct_message_id IS NOT NULL"),
            sqlite_where=text("direct_message_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys on this table: its rows are written only by the service's own inserts,
    # which take the ids from the referenced rows in the same transaction, and PostgreSQL's
    # per-row checks of the four keys (even of NULL ones) cost 12 of the 28 s of a publish to
    # 1,000,000 subscribers (docs/benchmarks.md). Updates, questions and direct messages are
    # never deleted (a direct message's personal data is erased in place); erasing a
    # subscriber clears the link itself (subscribers.service.erase), as ON DELETE SET NULL did.
    update_id: int | None = Field(default=None)
    channel: str = Field(max_length=40)
    # "s<subscriber id>", "q<question id>", "m<direct message id>" or a broadcast target of the
    # channel: never personal data
    target: str = Field(max_length=500)
    subscriber_id: int | None = Field(default=None)
    question_id: int | None = Field(default=None)
    # A direct message instead of an update: the bot's replies, sign-up codes ("m<id>" target)
    direct_message_id: int | None = Field(default=None)
    language: str = Field(default="nl", max_length=8)
    state: DeliveryState = Field(default=DeliveryState.pending, sa_type=enum_type(DeliveryState))
    attempts: int = 0
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    claim_token: str | None = Field(default=None, max_length=36)
    provider_id: str | None = Field(default=None, max_length=120)
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
    retry_after: float | None = None  # a passing failure: due again after this many seconds
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class DirectMessage(SQLModel, table=True):
    """One message to one person that is not an update: the bot's replies, a sign-up code. It is
    queued as a delivery, so it gets the channel's pacing and retries like any update; its
    address and text are personal and are erased as soon as the delivery is final."""

    __tablename__ = "direct_messages"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=40)
    address: str | None = Field(default=None, max_length=500)  # erased once final
    text: str | None = Field(default=None, sa_column=Column(Text))  # erased once final
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="nl", max_length=8)
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
