"""Events are announced when the outermost transaction commits, not when a savepoint inside it
is released: every console form acts in a savepoint, and a listener that reads the database at
once (the live pages' hub) must find what the event announces."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from broadcast.common import Severity
from broadcast.db import Database, emit
from broadcast.incidents.models import Incident

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the local bus


def test_an_event_from_a_savepoint_waits_for_the_commit_and_sees_its_rows(database_url):
    db = Database(database_url)
    seen: list[tuple[str, int]] = []

    def read_at_once(event) -> None:
        with db.session_scope(write=False) as session:
            seen.append((event["kind"], session.exec(select(func.count(Incident.id))).one()))

    db.bus.listen(read_at_once)
    try:
        with db.session_scope() as session:
            with session.begin_nested():
                session.add(Incident(title="Hoogwater", slug="hoogwater", severity=Severity.info))
                session.flush()
                emit(session, "public", slug="hoogwater")
            assert seen == []  # the savepoint is released, but nothing is committed yet
        assert seen == [("public", 1)]  # once, and the row is there for the listener

        with (
            db.session_scope() as session,
            pytest.raises(RuntimeError),
            session.begin_nested(),
        ):
            emit(session, "public", slug="refused")
            raise RuntimeError("refused")
        assert seen == [("public", 1)]  # a rolled-back savepoint announces nothing
    finally:
        db.dispose()
