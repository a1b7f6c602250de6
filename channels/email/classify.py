"""SMTP answers as the channel errors of ``channels.errors``.

A reason never quotes the server's text: it usually names the mailbox.
"""

from __future__ import annotations

import re

import aiosmtplib

from channels.errors import TARGET, ChannelError, PermanentFailure, RecipientGone, RetryLater

# 550 mailbox unavailable / does not exist, 551 user not local, 553 mailbox name not allowed
GONE_CODES = frozenset({550, 551, 553})
# A mailbox's own temporary refusal at RCPT (greylisting, mailbox busy or full): only this
# recipient waits. Servers rarely say how long; greylisting lets a retry in after a minute or so.
TARGET_WAIT = 60.0
_WAIT = re.compile(r"(\d{1,5})\s*(seconds?|secs?|s\b|minutes?|mins?|m\b)", re.IGNORECASE)


def stated_wait(text: str) -> float | None:
    """The wait a server's answer states ("try again in 30 seconds", "in 5 minutes")."""
    match = _WAIT.search(text or "")
    if match is None:
        return None
    seconds = float(match.group(1))
    return seconds * 60 if match.group(2).lower().startswith("m") else seconds


def classify(exc: Exception, *, per_subscriber: bool = True) -> ChannelError:
    """An ``aiosmtplib`` error (or a socket error) as retry-later, recipient-gone or permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        if refusals:
            return _answer(refusals[0].code, refusals[0].message, "RCPT", per_subscriber)
        return RetryLater("SMTP server refused the recipient without a code")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _answer(exc.code, exc.message, "RCPT", per_subscriber)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _answer(exc.code, exc.message, "MAIL", per_subscriber)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _answer(exc.code, exc.message, "DATA", per_subscriber)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PermanentFailure(f"SMTP authentication failed ({exc.code})")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _answer(exc.code, exc.message, "session", per_subscriber)
    # Refused, reset, timed out, disconnected, TLS failed, no greeting: the server is away.
    return RetryLater(f"SMTP server unreachable: {type(exc).__name__}")


def _answer(code: int, text: str, stage: str, per_subscriber: bool) -> ChannelError:
    reason = f"SMTP {code} at {stage}"
    if 400 <= code < 500:
        wait = stated_wait(text)
        if stage == "RCPT" and code != 452:  # 452 at RCPT: too many recipients, the server's
            return RetryLater(reason, retry_after=wait or TARGET_WAIT, scope=TARGET)
        return RetryLater(reason, retry_after=wait)  # 421 and the like: the whole server
    if code in GONE_CODES and stage == "RCPT" and per_subscriber:
        return RecipientGone(reason)
    if code < 400:  # an answer out of place (a 2xx or 3xx where it made no sense)
        return RetryLater(reason)
    return PermanentFailure(reason)
