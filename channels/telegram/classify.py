"""python-telegram-bot's typed errors turned into the channel error vocabulary.

The error texts are the Bot API's ``description``; chat ids and the token never appear in them
(``Bot.initialize`` puts the token in its ``InvalidToken`` text, so that one is replaced).
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram import error as tg

from channels.base import Target
from channels.errors import (
    ChannelError,
    PermanentFailure,
    RecipientGone,
    RetryLater,
    TargetMoved,
)

# A resident who deleted their account or never started the bot answers 400, not 403.
_UNREACHABLE = ("chat not found", "peer_id_invalid", "user not found", "user is deactivated")


def classify(exc: tg.TelegramError, target: Target) -> ChannelError:
    """The channel error for one failed Bot API call (order matters: BadRequest and TimedOut
    are NetworkErrors in PTB's hierarchy)."""
    if isinstance(exc, tg.RetryAfter):
        seconds = retry_after_seconds(exc)
        return RetryLater(f"flood control: retry after {seconds:g} s", retry_after=seconds)
    if isinstance(exc, tg.ChatMigrated):
        return TargetMoved("the group became a supergroup", new_address=str(exc.new_chat_id))
    if isinstance(exc, tg.InvalidToken):
        return PermanentFailure("the bot token was rejected")
    if isinstance(exc, tg.Forbidden):  # blocked, deactivated, kicked, not a channel member
        return _gone_or_failed(exc.message, target)
    if isinstance(exc, tg.BadRequest):
        if any(text in exc.message.lower() for text in _UNREACHABLE):
            return _gone_or_failed(exc.message, target)
        return PermanentFailure(exc.message)
    if isinstance(exc, tg.TimedOut):
        return RetryLater("timed out")
    if isinstance(exc, tg.NetworkError):  # connection errors and 5xx answers
        return RetryLater(f"network error: {exc.message[:200]}")
    # Conflict, EndPointNotFound and the like cannot come from a send: a bug, so let the core
    # retry it until the attempts run out and the delivery is visible as dead.
    return RetryLater(f"unexpected {type(exc).__name__}: {exc.message[:200]}")


def _gone_or_failed(reason: str, target: Target) -> ChannelError:
    """A resident who blocked the bot is gone; the broadcast channel refusing us is an
    operator's problem (bot removed from the channel), never a reason to drop the target."""
    return RecipientGone(reason) if target.per_subscriber else PermanentFailure(reason)


def retry_after_seconds(exc: tg.RetryAfter) -> float:
    """PTB 22 warns on reading ``retry_after`` while it moves from int to timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
