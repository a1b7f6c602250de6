"""Console sessions: a random cookie token, stored only as a hash, with a sliding expiry."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel import Session, col, delete, select

from broadcast import audit
from broadcast.auth.models import ConsoleSession, User
from broadcast.auth.service import hash_token
from broadcast.common import stored_id, utcnow

COOKIE = "bc_session"  # carries the token in the browser: the console and media reads use it
LIFETIME = timedelta(hours=12)  # a long shift; renewed while the console is in use


def start(session: Session, user: User) -> tuple[str, ConsoleSession]:
    """A new session for ``user``; returns the cookie value (shown once) and the row."""
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        token_hash=hash_token(token),
        user_id=stored_id(user),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + LIFETIME,
    )
    session.add(row)
    audit.record(
        session,
        actor=user.name,
        actor_id=user.id,
        action="console.login",
        subject=f"user:{user.id}",
    )
    return token, row


def lookup(session: Session, token: str | None) -> tuple[User, ConsoleSession] | None:
    """The active user and session behind a cookie value, renewing the expiry when half used."""
    if not token:
        return None
    row = session.exec(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token))
    ).first()
    now = utcnow()
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.expires_at - now < LIFETIME / 2:
        row.expires_at = now + LIFETIME
        session.add(row)
    return user, row


def end(session: Session, token: str | None) -> None:
    if found := lookup(session, token):
        user, row = found
        session.delete(row)
        audit.record(
            session,
            actor=user.name,
            actor_id=user.id,
            action="console.logout",
            subject=f"user:{user.id}",
        )


def purge_expired(session: Session) -> int:
    result = session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= utcnow()))
    return result.rowcount or 0
