"""Failed console logins are counted, and past a limit logins are refused for a while before
the password is even checked, so that nobody can guess passwords at the speed of the server.

Two counts over the last 15 minutes: one account from one client address (5 by default), and
one client address over all accounts (20). There is deliberately no count per account alone:
in a crisis, anybody could then lock the communication team out of its console by typing wrong
passwords for their names. A successful login clears its account's count from that address.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlmodel import Session

from broadcast import ratelimit
from broadcast.errors import TooManyRequests
from broadcast.settings import Settings
from broadcast.web.i18n import _

WINDOW = timedelta(minutes=15)
ACCOUNT, CLIENT = "login-account", "login-client"  # the counts' kinds


def check(session: Session, settings: Settings, *, account: str, client: str) -> None:
    """Raise ``TooManyRequests`` (with the seconds until a new try) when a limit is reached."""
    limits = [
        (ratelimit.Limit(ACCOUNT, settings.login_failures_per_account, WINDOW), (account, client)),
        (ratelimit.Limit(CLIENT, settings.login_failures_per_client, WINDOW), (client,)),
    ]
    seconds = max(ratelimit.wait(session, limit, ratelimit.key(*who)) for limit, who in limits)
    if seconds:
        raise TooManyRequests(
            _("too many failed logins: try again in %(minutes)s minutes"),
            retry_after=seconds,
            minutes=math.ceil(seconds / 60),
        )


def failed(session: Session, *, account: str, client: str) -> None:
    ratelimit.record(session, ACCOUNT, ratelimit.key(account, client))
    ratelimit.record(session, CLIENT, ratelimit.key(client))


def succeeded(session: Session, *, account: str, client: str) -> None:
    ratelimit.forget(session, ACCOUNT, ratelimit.key(account, client))
