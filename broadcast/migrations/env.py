"""Alembic environment: the URL and connection come from ``broadcast.migrate``, never a file."""

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

import broadcast.models  # noqa: F401  (registers every table on the metadata)

MIGRATION_LOCK = 7_141_021  # advisory lock key: one migrating process at a time on PostgreSQL

config = context.config
target_metadata = SQLModel.metadata
FOREIGN_TABLES = {"apscheduler_jobs"}  # created and owned by APScheduler's job store


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()


run_migrations_online()
