"""The installation's secret key: it keys the hashes of personal data kept for rate limits
(client addresses, typed names) and signs the console's cookies.

``BROADCAST_SECRET_KEY`` when set; otherwise a random key made on first use and kept in the
database, so that every process of an installation (``serve``, ``worker``, several machines)
uses the same one and no configuration is needed. A key written in the code would make the
hashes reversible by anyone who tries every IPv4 address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from broadcast.settings import Settings


class InstallationKey(SQLModel, table=True):
    """A secret made once for the whole installation, kept in the database: the one thing
    every process shares."""

    __tablename__ = "installation_keys"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=128)


NAME = "secret"
_known: WeakKeyDictionary[Engine | Connection, bytes] = WeakKeyDictionary()  # one read per process


def secret_key(session: Session, settings: Settings | None = None) -> bytes:
    """The configured key, else the one kept in the database (``settings`` None: not configured)."""
    if settings is not None and settings.secret_key:
        return settings.secret_key.get_secret_value().encode()
    engine = session.get_bind()
    if key := _known.get(engine):
        return key
    if row := session.get(InstallationKey, NAME):
        key = _known[engine] = row.value.encode()  # committed: the same in every process
        return key
    return _new_key(session).encode()  # remembered once committed and read again


def digest(key: bytes, *parts: str) -> str:
    """HMAC-SHA-256 of ``parts`` (hex): the same parts give the same digest under one key."""
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def _new_key(session: Session) -> str:
    try:  # two processes starting at once: the first one's key wins
        with session.begin_nested():
            session.add(InstallationKey(name=NAME, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass
    row = session.get(InstallationKey, NAME, populate_existing=True)
    assert row is not None  # inserted just now, here or by the process that won
    return row.value


class LinkSigner:
    """``channels.base.LinkSigner`` with the installation's key: tokens for the links residents
    follow without logging in (an e-mail's unsubscribe link). A token is the value in base64url
    and 128 bits of its HMAC for the purpose. ``session_scope`` opens a unit of work: the key is
    read (or made) once, at the first token."""

    def __init__(self, session_scope: Callable[[], AbstractContextManager[Session]], settings):
        self._scope = session_scope
        self._settings = settings
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            with self._scope() as session:
                self._key = secret_key(session, self._settings)
        return self._key

    def _mac(self, purpose: str, value: str) -> str:
        return digest(self._secret(), "link", purpose, value)[:32]

    def sign(self, purpose: str, value: str) -> str:
        encoded = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        return f"{encoded}.{self._mac(purpose, value)}"

    def unsign(self, purpose: str, token: str) -> str | None:
        encoded, _, mac = token.rpartition(".")
        try:
            value = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return value if hmac.compare_digest(mac, self._mac(purpose, value)) else None
