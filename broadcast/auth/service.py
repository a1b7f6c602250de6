"""Users, API tokens (stored only as a SHA-256 hash) and console passwords (argon2)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Session, select

from broadcast import audit
from broadcast.auth.models import Role, User
from broadcast.errors import Conflict, Invalid

TOKEN_PREFIX = "bc_"
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_user(
    session: Session, *, name: str, role: Role, password: str | None = None, display_name: str = ""
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
    audit.record(session, actor="cli", action="user.add", subject=f"user:{user.id}", role=role)
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
