"""Checked contracts about the code's shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_channel_adapters_never_import_the_core():
    """Dependencies point one way: channels/ knows the adapter interface, never broadcast/."""
    assert "Channel adapters never import the core KEPT" in lint_imports()


def test_delivery_imports_no_domain_package():
    """broadcast.delivery sends what the domain hands it (through its Renderer), nothing more."""
    assert "Delivery imports no domain package KEPT" in lint_imports()


def test_migrations_match_the_models(tmp_path):
    """A model change without a migration fails here, not in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import broadcast.models  # noqa: F401
    from broadcast.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
