"""Failed console logins are counted, and past a limit logins are refused for a while before
the password is even checked, so that nobody can guess passwords at the speed of the server.

Two counts over the last 15 minutes: one account from one client address (5 by default), and
one client address over all accounts (20). There is deliberately no count per account alone:
in a crisis, anybody could then lock the communication team out of its console by typing wrong
passwords for their names. A successful login clears its account's count from that address.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy import and_, delete
from sqlmodel import Session, col, select

from broadcast.auth.models import LoginFailure
from broadcast.common import utcnow
from broadcast.errors import TooManyRequests
from broadcast.settings import Settings

WINDOW = timedelta(minutes=15)


def check(session: Session, settings: Settings, *, account: str, client: str) -> None:
    """Raise ``TooManyRequests`` (with the seconds until a new try) when a limit is reached."""
    now = utcnow()
    session.execute(delete(LoginFailure).where(col(LoginFailure.at) < now - WINDOW))
    account_key, client_key = _key(account), _key(client)
    limits = [
        (
            and_(LoginFailure.account_key == account_key, LoginFailure.client_key == client_key),
            settings.login_failures_per_account,
        ),
        (LoginFailure.client_key == client_key, settings.login_failures_per_client),
    ]
    waits = [
        wait for condition, limit in limits if (wait := _wait(session, condition, limit, now))
    ]
    if waits:
        seconds = max(waits)
        raise TooManyRequests(
            "too many failed logins: try again in %(minutes)s minutes",
            retry_after=seconds,
            minutes=math.ceil(seconds / 60),
        )


def failed(session: Session, *, account: str, client: str) -> None:
    session.add(LoginFailure(account_key=_key(account), client_key=_key(client)))


def succeeded(session: Session, *, account: str, client: str) -> None:
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.account_key == _key(account), LoginFailure.client_key == _key(client)
        )
    )


def _wait(session: Session, condition, limit: int, now: datetime) -> int:
    """Seconds until fewer than ``limit`` failures are in the window (0: fewer already)."""
    newest = session.exec(
        select(LoginFailure.at).where(condition).order_by(col(LoginFailure.at).desc()).limit(limit)
    ).all()
    if len(newest) < limit:
        return 0
    return max(1, math.ceil((newest[-1] + WINDOW - now).total_seconds()))


def _key(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()
