"""Claim queries at a million waiting rows: the old single query against the split one.

    python -m bench.claim_plans [--rows 1000000] [--repeat 5]
                                [--backend sqlite|postgresql|both] [--postgres-url URL] [--output F]

A fresh, migrated database (a SQLite file in a temporary directory, or the PostgreSQL database
``bench_claim_plans``, its schema dropped and recreated) gets ``--rows`` webhook deliveries of
one publish, all due, caught halfway through the fan-out: the first half ``sent``, 200 rows
``sending`` under a live lease (a batch in flight), the rest ``pending``. PostgreSQL is then
``ANALYZE``d, as autovacuum would have done.

Two rounds on the same rows, in the same run:
1. *old*: the queries as ``broadcast/delivery/queue.py`` had them (one ``OR`` of due-pending and
   expired-lease rows ``ORDER BY id LIMIT 100``, once with ``direct_message_id IS NOT NULL`` for the
   bot's answers and once without; ``next_due`` as ``min(next_attempt_at)``) on the old index
   ``ix_delivery_due (channel, state, next_attempt_at)``;
2. *new*: the three claim cases and ``next_due`` of today's ``queue.py`` on the indexes of the
   ``c7e1d2a94b35`` migration.
Each query is the ``SELECT`` of ids that a claim's ``UPDATE … WHERE id IN (…)`` runs (inside the
write transaction on SQLite), timed ``--repeat`` times in a read transaction; the median and
the plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``) are printed. One claim of a batch runs all three
cases (the later ones only while the batch is not full), so "claim" = the sum.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, create_engine, func, or_, select, text

from bench.common import (
    database_arguments,
    fresh_database,
    load_average,
    machine_facts,
    median,
    prepare,
)

# Its own database: other benchmarks drop the schema of theirs.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_claim_plans"
CHANNEL = "webhook"
BATCH = 100
IN_FLIGHT = 200


def seed(url: str, rows: int) -> float:
    started = time.perf_counter()
    engine = create_engine(url)
    due = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    lease = datetime(2099, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    "INSERT INTO deliveries (channel, target, language, state, attempts, "
                    "next_attempt_at, created_at) SELECT :channel, 's' || n, 'nl', 'pending', 0, "
                    ":due, :due FROM generate_series(1, :rows) AS n"
                ),
                {"channel": CHANNEL, "due": due, "rows": rows},
            )
        else:
            stamp = due.strftime("%Y-%m-%d %H:%M:%S.000000")
            connection.execute(
                text(
                    "WITH RECURSIVE n(i) AS "
                    "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
                    "INSERT INTO deliveries (channel, target, language, state, attempts, "
                    "next_attempt_at, created_at) SELECT :channel, 's' || i, 'nl', 'pending', 0, "
                    ":due, :due FROM n"
                ),
                {"channel": CHANNEL, "due": stamp, "rows": rows},
            )
        connection.execute(
            text(
                "UPDATE deliveries SET state = 'sending', lease_until = :lease, "
                "claim_token = 'in-flight' WHERE id <= :n"
            ),
            {"lease": lease if engine.dialect.name == "postgresql" else str(lease), "n": IN_FLIGHT},
        )
        connection.execute(  # halfway through the fan-out: the first half was sent
            text("UPDATE deliveries SET state = 'sent' WHERE id > :n AND id <= :half"),
            {"n": IN_FLIGHT, "half": rows // 2},
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE deliveries"))
    engine.dispose()
    return time.perf_counter() - started


def old_queries(now: datetime) -> dict:
    from broadcast.delivery.models import DeliveryState
    from broadcast.delivery.queue import D

    due = and_(
        D.channel == CHANNEL,
        or_(
            and_(D.state == DeliveryState.pending, D.next_attempt_at <= now),
            and_(D.state == DeliveryState.sending, D.lease_until < now),
        ),
    )

    def ids(where):
        return (
            select(D.id).where(where).order_by(D.id).limit(BATCH).with_for_update(skip_locked=True)
        )

    return {
        "direct replies (OR, ORDER BY id)": ids(and_(due, D.direct_message_id.is_not(None))),
        "all due (OR, ORDER BY id)": ids(due),
        "next_due: min(next_attempt_at)": select(func.min(D.next_attempt_at)).where(
            D.channel == CHANNEL, D.state == DeliveryState.pending
        ),
    }


def new_queries(now: datetime) -> dict:
    from broadcast.delivery import queue

    found = {}
    for case in queue.CLAIM_CASES:
        name = case.__name__.strip("_").replace("_", " ")
        found[name] = queue.claim_ids(*case(CHANNEL, now), BATCH)
    found["next_due: ORDER BY next_attempt_at LIMIT 1"] = queue.next_due_query(CHANNEL)
    return found


OLD_INDEX = [
    "DROP INDEX ix_delivery_direct_due",
    "DROP INDEX ix_delivery_due",
    "CREATE INDEX ix_delivery_due ON deliveries (channel, state, next_attempt_at)",
]
NEW_INDEX = [
    "DROP INDEX ix_delivery_due",
    "CREATE INDEX ix_delivery_due ON deliveries (channel, state, next_attempt_at, id)",
    "CREATE INDEX ix_delivery_direct_due ON deliveries (channel, state, next_attempt_at, id) "
    "WHERE direct_message_id IS NOT NULL",
]


def reindex(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE deliveries")
    engine.dispose()


def run_round(db, queries: dict, repeat: int) -> list[dict]:
    rows = []
    for name, statement in queries.items():
        compiled = statement.compile(dialect=db.engine.dialect)
        params = {
            key: value.isoformat(sep=" ") if isinstance(value, datetime) else value
            for key, value in compiled.params.items()
        }
        if not db.is_postgres:
            params = tuple(params[key] for key in compiled.positiontup or ())
        sql = str(compiled)
        timings = []
        with db.engine.connect() as connection:
            explain = "EXPLAIN " if db.is_postgres else "EXPLAIN QUERY PLAN "
            plan_rows = connection.exec_driver_sql(explain + sql, params).all()
            plan = " / ".join(
                str(row[0] if db.is_postgres else row[-1]).strip() for row in plan_rows
            )
            for _ in range(repeat):
                started = time.perf_counter()
                found = connection.exec_driver_sql(sql, params).all()
                timings.append(time.perf_counter() - started)
            connection.rollback()
        rows.append({"query": name, "ms": median(timings) * 1000, "rows": len(found), "plan": plan})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.claim_plans",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    database_arguments(parser)
    parser.set_defaults(postgres_url=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    backends, command = prepare(args, "bench.claim_plans", argv)
    from broadcast.db import Database

    started, load_at_start = time.perf_counter(), load_average()
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-claim-") as tmp:
        for backend in backends:
            url = fresh_database(backend, Path(tmp), "claim", args.postgres_url)
            seconds = seed(url, args.rows)
            print(f"[{backend}] seeded {args.rows:,} rows in {seconds:.1f} s", file=sys.stderr)
            db = Database(url)
            now = datetime.now(UTC) + timedelta(seconds=1)
            reindex(url, OLD_INDEX)
            old = run_round(db, old_queries(now), args.repeat)
            reindex(url, NEW_INDEX)
            new = run_round(db, new_queries(now), args.repeat)
            db.dispose()
            name = "PostgreSQL" if backend == "postgresql" else "SQLite"
            lines.append(
                f"\n{name}, {args.rows:,} rows (half sent, {IN_FLIGHT} in flight, the rest "
                "pending):\n"
            )
            lines.append("| Round | Query | median | rows | plan |")
            lines.append("|---|---|---:|---:|---|")
            for label, found in (("old", old), ("new", new)):
                for row in found:
                    plan = row["plan"].replace("|", "\\|")
                    lines.append(
                        f"| {label} | {row['query']} | {row['ms']:,.2f} ms | {row['rows']} "
                        f"| `{plan}` |"
                    )
            old_claim = old[0]["ms"] + old[1]["ms"]
            new_claim = sum(row["ms"] for row in new[:3])
            lines.append(
                f"\n{name}: one claim of a {BATCH}-row batch, old {old_claim:,.1f} ms → new "
                f"{new_claim:,.2f} ms; next_due {old[2]['ms']:,.1f} → {new[3]['ms']:,.2f} ms."
            )
    facts = machine_facts(args.postgres_url if "postgresql" in backends else None)
    facts["Load average (1 min), start → end"] = f"{load_at_start} → {load_average()}"
    facts["Duration"] = f"{time.perf_counter() - started:.0f} s"
    header = [f"Command: `{command.strip()}`", "", "| Machine | |", "|---|---|"]
    header += [f"| {key} | {value} |" for key, value in facts.items()]
    report = "\n".join(header + lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
