"""What the dispatcher works with: claimed jobs, the outcomes of sending them, and the
``Renderer`` through which the domain above says what a claimed row is to send and hears what
became of its recipients. Delivery itself never reads a domain table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from sqlmodel import Session

from broadcast.common import utcnow
from channels.base import Message, UpdateView


class ClaimedRow(NamedTuple):
    """The columns of a delivery row that claiming returns."""

    id: int
    update_id: int | None
    target: str  # "s<id>", "q<id>", "m<id>" or a broadcast target (see Delivery.target)
    subscriber_id: int | None
    question_id: int | None
    direct_message_id: int | None
    language: str
    attempts: int
    created_at: datetime | None = None  # when it was queued: its time to live counts from here


@dataclass(frozen=True)
class Content:
    """What one claimed row sends, and to whom, as the domain sees it."""

    address: str | None  # None when the subscriber, question or message is gone
    update: UpdateView | None = None
    message: Message | None = None  # a direct message, already rendered
    original_message_id: str | None = None  # a correction's superseded message, same target
    expires_at: datetime | None = None  # a direct message not sent by then is not sent at all


class Renderer(Protocol):
    """The domain's side of delivery, injected into the dispatcher."""

    def contents(
        self, session: Session, channel: str, rows: Sequence[ClaimedRow]
    ) -> dict[int, Content]:
        """What each claimed row sends, by delivery id (a missing id: nothing to send)."""
        ...

    def recipient_gone(self, session: Session, subscriber_id: int) -> None:
        """The subscriber blocked the channel, replied STOP or no longer exists."""
        ...

    def recipient_moved(
        self, session: Session, subscriber_id: int | None, new_address: str | None
    ) -> bool:
        """Follow the subscriber to its new address; False when another subscriber has it."""
        ...


@dataclass(frozen=True)
class Job:
    """One claimed delivery, with everything the adapter call needs: an update to render, or a
    direct message whose text is final."""

    delivery_id: int
    token: str
    channel: str
    target: str  # the row's target key
    address: str | None  # resolved address; None when the subscriber or question is gone
    language: str
    update: UpdateView | None
    attempts: int
    per_subscriber: bool
    original_message_id: str | None = None
    message: Message | None = None  # a direct message, already rendered
    direct_message_id: int | None = None
    expires_at: datetime | None = None  # a direct message not sent by then is not sent at all
    give_up_at: datetime | None = None  # its time to live is over: dead if not sent by then


class OutcomeKind(StrEnum):
    """What the adapter answered (also the ``outcome`` label of the send metrics)."""

    sent = "sent"
    retry = "retry"  # retry later: back off, or dead when the attempts run out
    failed = "failed"  # permanent
    gone = "gone"  # the recipient will never receive anything again
    moved = "moved"  # the recipient's chat has a new address


@dataclass
class Outcome:
    job: Job
    kind: OutcomeKind
    provider_id: str | None = None
    delivered: bool = False
    error: str | None = None
    retry_after: float | None = None
    new_address: str | None = None
    at: datetime = field(default_factory=utcnow)
