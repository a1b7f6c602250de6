"""Failed console logins are counted, and past a few of them every new try waits longer and
longer before the password is even checked, so that nobody can guess passwords at the speed of
the server (OWASP, "Blocking Brute Force Attacks", with its "device cookies").

A browser that signed in to an account before carries a signed device cookie for it and is
trusted: its failures count only against that cookie. Everybody else is untrusted and counted
per account and client address, and per client address over all accounts. Each count allows a
few failures within 15 minutes, then waits 1 minute after the latest failure, doubling with every
further one up to 15 minutes; there is never a hard lock-out. There is deliberately no count per
account alone, and a colleague's browser keeps working behind the same town-hall address: in a
crisis nobody can lock the communication team out of its console by typing wrong passwords for
their names. See docs/security.md, "Console sign-in".
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from broadcast import keys, ratelimit
from broadcast.common import utcnow
from broadcast.errors import TooManyRequests
from broadcast.i18n import _
from broadcast.settings import Settings

WINDOW = timedelta(minutes=15)  # failures are remembered this long, and nobody waits longer
FIRST_WAIT = timedelta(minutes=1)
ACCOUNT, CLIENT, DEVICE = "login-account", "login-client", "login-device"  # the counts' kinds


@dataclass(frozen=True)
class Attempt:
    account: str  # as typed
    client: str  # the client's address
    device: str | None = None  # the device cookie the browser sent, if any


def check(session: Session, settings: Settings, attempt: Attempt) -> None:
    """Raise ``TooManyRequests`` (with the seconds until a new try) while the attempt waits."""
    seconds = max(
        ratelimit.backoff(session, kind, key, free=free, first=FIRST_WAIT, longest=WINDOW)
        for kind, key, free in _counts(session, settings, attempt)
    )
    if seconds:
        raise TooManyRequests(
            _("too many failed logins: try again in %(minutes)s minutes"),
            retry_after=seconds,
            minutes=math.ceil(seconds / 60),
        )


def failed(session: Session, settings: Settings, attempt: Attempt) -> None:
    for kind, key, _free in _counts(session, settings, attempt):
        ratelimit.record(session, kind, key)


def succeeded(session: Session, settings: Settings, attempt: Attempt) -> str:
    """Clear the attempt's own count; returns a new device cookie for this browser."""
    secret = keys.secret_key(session, settings)
    if nonce := _trusted_nonce(secret, settings, attempt):
        ratelimit.forget(session, DEVICE, ratelimit.key(secret, nonce))
    else:
        ratelimit.forget(session, ACCOUNT, ratelimit.key(secret, attempt.account, attempt.client))
    return device_cookie(secret, attempt.account)


def device_cookie(secret: bytes, account: str, issued: datetime | None = None) -> str:
    """``nonce.issued.signature``: proves that this browser signed in to ``account`` before."""
    nonce = secrets.token_urlsafe(16)
    stamp = str(int((issued or utcnow()).timestamp()))
    return f"{nonce}.{stamp}.{_signature(secret, account, nonce, stamp)}"


def _counts(session: Session, settings: Settings, attempt: Attempt) -> list[tuple[str, str, int]]:
    secret = keys.secret_key(session, settings)
    per_account = settings.login_failures_per_account
    if nonce := _trusted_nonce(secret, settings, attempt):
        return [(DEVICE, ratelimit.key(secret, nonce), per_account)]
    return [
        (ACCOUNT, ratelimit.key(secret, attempt.account, attempt.client), per_account),
        (CLIENT, ratelimit.key(secret, attempt.client), settings.login_failures_per_client),
    ]


def _trusted_nonce(secret: bytes, settings: Settings, attempt: Attempt) -> str | None:
    """The device cookie's nonce when it was issued for this account and is still fresh."""
    nonce, _, rest = (attempt.device or "").partition(".")
    stamp, _, signature = rest.partition(".")
    if not (nonce and stamp.isdigit() and signature):
        return None
    expected = _signature(secret, attempt.account, nonce, stamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    age = utcnow().timestamp() - int(stamp)
    return nonce if age < timedelta(days=settings.login_device_days).total_seconds() else None


def _signature(secret: bytes, account: str, nonce: str, stamp: str) -> str:
    return keys.digest(secret, "login-device", account.strip().lower(), nonce, stamp)
