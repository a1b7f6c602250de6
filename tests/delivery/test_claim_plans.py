"""Claiming walks indexes: each claim case and ``next_due`` is answered by an index, in the
index's order, so a claim stops after its batch however many rows wait (EXPLAIN, both databases).

SQLite's plan is what it runs. PostgreSQL chooses by statistics, and on a test-sized table a
sequential scan is always cheapest, so its plan is taken with sequential scans and explicit
sorts priced out (``enable_seqscan``/``enable_sort`` off): a plan without a ``Sort`` node then
shows that an index delivers the rows in the order asked for. The timings at a million rows are
in ``bench/claim_plans.py``.
"""

from __future__ import annotations

from datetime import datetime

from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.delivery import queue


def explain(db: Database, statement) -> str:
    compiled = statement.compile(dialect=db.engine.dialect)
    params = {
        name: value.isoformat(sep=" ") if isinstance(value, datetime) else value
        for name, value in compiled.params.items()
    }
    with db.engine.connect() as connection:
        if db.is_postgres:
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_sort = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
            connection.rollback()
            return "\n".join(row[0] for row in rows)
        positional = tuple(params[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
        return "\n".join(row[-1] for row in rows)


def claim_plans(db: Database) -> dict[str, str]:
    now = utcnow()
    plans = {}
    for case in queue.CLAIM_CASES:
        where, order = case("webhook", now)
        plans[case.__name__] = explain(db, queue.claim_ids(where, order, 100))
    plans["next_due"] = explain(db, queue.next_due_query("webhook"))
    return plans


def test_each_claim_case_walks_an_index_and_never_sorts_the_backlog(settings):
    db = Database(settings.database_url)
    try:
        plans = claim_plans(db)
    finally:
        db.dispose()
    expected = {
        "_direct_replies": "ix_delivery_direct_due",
        "_expired_claims": "ix_delivery_due",
        "_pending_by_due_time": "ix_delivery_due",
        "next_due": "ix_delivery_due",
    }
    for name, index in expected.items():
        plan = plans[name]
        assert index in plan, f"{name}: {plan}"
        if db.is_postgres:
            assert "Seq Scan" not in plan and "Sort" not in plan, f"{name}: {plan}"
        else:
            assert "SCAN deliveries" not in plan, f"{name}: {plan}"  # a full scan
            assert "TEMP B-TREE" not in plan, f"{name}: {plan}"  # a sort of what it found
