"""A PostgreSQL session-level advisory lock held on a dedicated connection: how one process among
many becomes the only one to do something (lead the scheduler, own a paced channel's lane).

The lock lives exactly as long as its connection. A process that dies (``kill -9``, a lost host)
loses its connection, PostgreSQL frees the lock at once and the next candidate that tries gets
it; a database restart drops every connection and so every lock, which ``alive`` notices. The
methods block (one statement each): call them in a thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


class AdvisoryLock:
    """``key`` is one 64-bit number, or a namespace and a name (``hashtext(name)`` in it)."""

    def __init__(self, engine: Engine, key: int | tuple[int, str], *, purpose: str):
        self.engine, self.purpose = engine, purpose
        self._params: dict[str, int | str]
        if isinstance(key, int):
            self._args, self._params = ":k", {"k": key}
        else:
            namespace, name = key
            self._args, self._params = ":ns, hashtext(:name)", {"ns": namespace, "name": name}
        self._connection: Connection | None = None
        self._guard = threading.Lock()  # one statement at a time on the connection

    @property
    def held(self) -> bool:
        return self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits. False also when the database is
        unavailable (the caller tries again later)."""
        with self._guard:
            if self._connection is not None:
                return True
            try:
                connection = self.engine.connect()
            except Exception as exc:
                log.warning("no %s: %s", self.purpose, type(exc).__name__)
                return False
            try:
                sql = f"SELECT pg_try_advisory_lock({self._args})"
                got = bool(connection.execute(text(sql), self._params).scalar())
                connection.commit()
            except Exception as exc:
                log.warning("no %s: %s", self.purpose, type(exc).__name__)
                connection.invalidate()
                connection.close()
                return False
            if got:
                self._connection = connection
            else:
                connection.close()
            return got

    def alive(self) -> bool:
        """Whether the lock is still ours: its connection answers. When it does not (the
        database restarted, the network broke) the lock is gone and the connection is dropped."""
        with self._guard:
            connection = self._connection
            if connection is None:
                return False
            try:
                connection.execute(text("SELECT 1"))
                connection.commit()
                return True
            except Exception:
                self._drop(connection)
                return False

    def release(self) -> None:
        """Unlock explicitly and close the connection without returning it to the pool (a
        pooled connection would go on holding the lock)."""
        with self._guard:
            connection = self._connection
            if connection is None:
                return
            with contextlib.suppress(Exception):
                connection.execute(text(f"SELECT pg_advisory_unlock({self._args})"), self._params)
                connection.commit()
            self._drop(connection)

    def _drop(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            connection.invalidate()
            connection.close()
        self._connection = None
