"""python-telegram-bot's typed errors turned into the channel error vocabulary.

The error texts are the Bot API's ``description``; chat ids and the token never appear in them
(``Bot.initialize`` puts the token in its ``InvalidToken`` text, so that one is replaced).
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from telegram import error as tg

from channels.base import Target
from channels.errors import (
    TARGET,
    ChannelError,
    PermanentFailure,
    RecipientGone,
    RetryLater,
    TargetMoved,
)

# A resident who deleted their account or never started the bot answers 400, not 403.
_UNREACHABLE = ("chat not found", "peer_id_invalid", "user not found", "user is deactivated")


# Telegram's flood control has two limits behind one answer (429 "retry after N"): about one
# message per second in a private chat (20 per minute in a group or channel), and about 30 per
# second for the whole bot. The answer does not say which one refused, so the adapter judges
# by what it did itself: a chat it sent to within that chat's window is the likely cause, and
# only that chat has to wait. Anything else is taken as the bot-wide limit (the safe guess:
# the whole lane pauses). A wrong "chat" guess costs one more 429 on the next chat, which is
# then judged bot-wide; it cannot make the lane hammer the API.
PRIVATE_CHAT_WINDOW = 3.0  # seconds: the 1 s limit, plus room for the pacer's spacing and jitter
GROUP_CHAT_WINDOW = 60.0  # seconds: 20 messages per minute in groups and channels
MEMORY = 50_000  # chats remembered at once; older entries fall out of the window anyway


class RecentChats:
    """When this process last sent to each chat, for as long as a chat's own limit can look
    back. Per process: a send by another worker is not seen, and is then judged bot-wide."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def sent(self, chat: str) -> None:
        now = self._clock()
        self._last[chat] = now
        self._last.move_to_end(chat)
        while self._last and (
            len(self._last) > MEMORY or next(iter(self._last.values())) < now - GROUP_CHAT_WINDOW
        ):
            self._last.popitem(last=False)

    def recent(self, chat: str) -> bool:
        at = self._last.get(chat)
        return at is not None and self._clock() - at <= window_of(chat)


def window_of(chat: str) -> float:
    """Private chats have positive ids; groups, supergroups and channels negative ones or a
    ``@username``."""
    return PRIVATE_CHAT_WINDOW if chat.isdigit() else GROUP_CHAT_WINDOW


def classify(exc: tg.TelegramError, target: Target, *, recent: bool = False) -> ChannelError:
    """The channel error for one failed Bot API call (order matters: BadRequest and TimedOut
    are NetworkErrors in PTB's hierarchy). ``recent``: this process sent to the target's chat
    within the chat's own flood-control window."""
    if isinstance(exc, tg.RetryAfter):
        seconds = retry_after_seconds(exc)
        if recent:
            return RetryLater(
                f"flood control for this chat: retry after {seconds:g} s",
                retry_after=seconds,
                scope=TARGET,
            )
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
