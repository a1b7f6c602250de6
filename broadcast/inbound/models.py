from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, utcnow


class InboundMessage(SQLModel, table=True):
    """One provider request, keyed by the provider's own id (Telegram ``update_id``, Twilio
    ``MessageSid``). The payload holds personal data and is emptied once processed; the key
    stays a while to refuse resends and replays."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "key", name="uq_inbound_messages_channel_key"),
        Index("ix_inbound_messages_pending", "handled_at", "claimed_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=40)
    key: str = Field(max_length=120)
    sender: str | None = Field(default=None, max_length=64)  # a hash: to erase a person's
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    attempts: int = 0
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    handled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
