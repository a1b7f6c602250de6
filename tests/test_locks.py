"""``broadcast.locks.AdvisoryLock`` against the real PostgreSQL: each lock on an engine of its
own, as two processes would hold them."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from broadcast.locks import AdvisoryLock

NAMESPACE = 7_141_099  # not one the service uses


@pytest.fixture
def engines(_postgres_schema):
    if _postgres_schema is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    made = [create_engine(_postgres_schema) for _ in range(3)]
    yield made
    for engine in made:
        engine.dispose()


def holder_pids(engine, name: str) -> list[int]:
    """Backends holding the two-part advisory lock (NAMESPACE, hashtext(name)) in this database."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                    "database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND classid = :ns AND objid = hashtext(:name)::oid AND objsubid = 2"
                ),
                {"ns": NAMESPACE, "name": name},
            ).scalars()
        )


def test_only_one_of_two_connections_owns_the_lock_until_it_is_released(engines):
    first = AdvisoryLock(engines[0], (NAMESPACE, "sms"), purpose="test lane")
    second = AdvisoryLock(engines[1], (NAMESPACE, "sms"), purpose="test lane")

    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.held and not second.held
    assert first.try_acquire()  # the owner asking again keeps it
    assert len(holder_pids(engines[2], "sms")) == 1

    first.release()
    assert not first.held and holder_pids(engines[2], "sms") == []
    assert second.try_acquire()
    assert not first.try_acquire()
    second.release()


def test_the_owners_connection_closed_frees_the_lock_for_the_other(engines):
    owner = AdvisoryLock(engines[0], (NAMESPACE, "telegram"), purpose="test lane")
    other = AdvisoryLock(engines[1], (NAMESPACE, "telegram"), purpose="test lane")
    assert owner.try_acquire() and owner.alive()
    assert not other.try_acquire()

    # The owner's backend goes away without unlocking: a kill -9 of its process, or a restart.
    (pid,) = holder_pids(engines[2], "telegram")
    with engines[2].connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()

    assert other.try_acquire()
    assert not owner.alive()  # the owner finds out on its next check, and lets go
    assert not owner.held
    assert not owner.try_acquire()  # and competes again: the other holds it now
    other.release()
    assert owner.try_acquire()
    owner.release()


def test_locks_of_different_names_and_the_single_key_space_are_independent(engines):
    sms = AdvisoryLock(engines[0], (NAMESPACE, "sms"), purpose="test lane")
    telegram = AdvisoryLock(engines[1], (NAMESPACE, "telegram"), purpose="test lane")
    single = AdvisoryLock(engines[1], NAMESPACE, purpose="test leader")
    try:
        assert sms.try_acquire()
        assert telegram.try_acquire()
        assert single.try_acquire()
    finally:
        for lock in (sms, telegram, single):
            lock.release()


def test_a_released_lock_leaves_no_pooled_connection_holding_it(engines):
    lock = AdvisoryLock(engines[0], (NAMESPACE, "mastodon"), purpose="test lane")
    assert lock.try_acquire()
    lock.release()
    # Every connection the pool hands out now may be used freely; none holds the lock.
    with engines[0].connect() as connection:
        connection.execute(text("SELECT 1"))
    assert holder_pids(engines[2], "mastodon") == []
    other = AdvisoryLock(engines[1], (NAMESPACE, "mastodon"), purpose="test lane")
    assert other.try_acquire()
    other.release()


def test_the_database_unavailable_means_no_lock_and_no_error():
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    lock = AdvisoryLock(engine, (NAMESPACE, "sms"), purpose="test lane")
    assert not lock.try_acquire()
    assert not lock.alive()
    lock.release()  # nothing held: nothing to do
    engine.dispose()
