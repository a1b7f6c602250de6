"""Direct messages: one text to one person that is not an update (the bot's answer to a
command, a sign-up code). Queued as a delivery, so the dispatcher paces and retries it like any
update and it survives a restart; the dispatcher claims these before update deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session

from broadcast.common import utcnow
from broadcast.db import emit
from broadcast.delivery.models import Delivery, DirectMessage


def queue(
    session: Session,
    *,
    channel: str,
    address: str,
    text: str,
    data: dict[str, Any] | None = None,
    language: str = "nl",
    ttl_seconds: float | None = None,
) -> DirectMessage:
    """Add the message and its delivery; they go out once the caller's transaction commits."""
    expires_at = utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds else None
    message = DirectMessage(
        channel=channel,
        address=address,
        text=text,
        data=data or {},
        language=language,
        expires_at=expires_at,
    )
    session.add(message)
    session.flush()
    session.add(
        Delivery(
            update_id=None,
            channel=channel,
            target=f"m{message.id}",
            direct_message_id=message.id,
            language=language,
        )
    )
    session.flush()
    emit(session, "queued", channel=channel)
    return message
