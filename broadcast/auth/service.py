"""Users, API tokens (stored only as a SHA-256 hash) and console passwords (argon2)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Session, col, delete, func, select

from broadcast import audit
from broadcast.audit import AuditEvent
from broadcast.auth.models import ConsoleSession, Role, User
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.i18n import _

TOKEN_PREFIX = "bc_"
_hasher = PasswordHasher()
Actor = User | str  # who changes a user: a signed-in admin, or "cli"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_user(
    session: Session,
    *,
    name: str,
    role: Role,
    password: str | None = None,
    display_name: str = "",
    by: Actor = "cli",
) -> tuple[User, str]:
    """Create a user; returns the user and the API token, which is shown once and never stored."""
    name = name.strip()
    if not name:
        raise Invalid("user name must not be empty")
    if session.exec(select(User).where(User.name == name)).first():
        raise Conflict(f"user {name!r} exists already")
    token = new_token()
    user = User(
        name=name,
        role=role,
        token_hash=hash_token(token),
        display_name=display_name,
        password_hash=_hasher.hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    _audit(session, by, "user.add", user, role=role)
    return user, token


def user_for_token(session: Session, token: str) -> User | None:
    user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
    return user if user and user.active else None


def user_for_password(session: Session, name: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None or not user.active or not user.password_hash:
        _hasher.hash(password)  # same cost whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def find_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name.strip())).first()
    if user is None:
        raise NotFound(_("user %(name)s not found"), name=repr(name))
    return user


def all_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.name))))


def last_sign_ins(session: Session) -> dict[int, datetime]:
    """When each user last signed in to the console, as the audit log remembers it."""
    query = (
        select(AuditEvent.actor_id, func.max(AuditEvent.at))
        .where(AuditEvent.action == "console.login", col(AuditEvent.actor_id).is_not(None))
        .group_by(col(AuditEvent.actor_id))
    )
    return {actor_id: at for actor_id, at in session.exec(query) if actor_id and at}


def set_password(session: Session, user: User, password: str, *, by: Actor) -> None:
    if not password:
        raise Invalid(_("the password must not be empty"))
    user.password_hash = _hasher.hash(password)
    session.add(user)
    _audit(session, by, "user.password", user)


def set_role(session: Session, user: User, role: Role, *, by: Actor) -> None:
    if user.role == role:
        return
    _keep_an_admin(session, user, leaving=user.role == Role.admin)
    before, user.role = user.role, role
    session.add(user)
    _audit(session, by, "user.role", user, role=role, was=before)


def set_active(session: Session, user: User, active: bool, *, by: Actor) -> None:
    """A deactivated user cannot sign in, every console session of theirs ends now and their
    API token is replaced by one nobody knows: reactivating restores the password, while a
    token (perhaps left behind with someone who left) comes only from ``revoke_token``."""
    if user.active == active:
        return
    if not active:
        _keep_an_admin(session, user, leaving=user.role == Role.admin)
        session.exec(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
        user.token_hash = hash_token(new_token())
    user.active = active
    session.add(user)
    _audit(session, by, "user.activate" if active else "user.deactivate", user)


def revoke_token(session: Session, user: User, *, by: Actor) -> str:
    """A new API token for ``user`` (returned once, never stored); the old one is dead."""
    token = new_token()
    user.token_hash = hash_token(token)
    session.add(user)
    _audit(session, by, "user.revoke_token", user)
    return token


def _keep_an_admin(session: Session, user: User, *, leaving: bool) -> None:
    """Nobody could manage users any more without one active admin."""
    if not leaving or not user.active:
        return
    others = (
        select(func.count())
        .select_from(User)
        .where(User.role == Role.admin, col(User.active), User.id != user.id)
    )
    if not session.exec(others).one():
        raise Conflict(_("%(name)s is the last active admin"), name=repr(user.name))


def _audit(session: Session, by: Actor, action: str, user: User, **detail) -> None:
    actor, actor_id = (by, None) if isinstance(by, str) else (by.name, by.id)
    audit.record(
        session, actor=actor, actor_id=actor_id, action=action, subject=f"user:{user.id}", **detail
    )
