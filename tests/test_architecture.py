"""Checked contracts about the code's shape."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@cache
def lint_imports() -> str:
    """Every import-linter contract of pyproject.toml, checked once per test session."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return " ".join(result.stdout.split())  # long contract names are wrapped


def test_channel_adapters_never_import_the_core():
    """Dependencies point one way: channels/ knows the adapter interface, never broadcast/."""
    assert "Channel adapters never import the core KEPT" in lint_imports()


def test_the_layers_hold():
    """Entry points > runtime > console > web > hooks, scheduling, metrics > domain >
    delivery > base: nothing imports a layer above its own (pyproject.toml lists them)."""
    assert "> domain > delivery > base KEPT" in lint_imports()


def test_domain_services_and_models_know_no_web_framework():
    assert "know no web framework, web site or console KEPT" in lint_imports()


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    executable = str(Path(sys.executable).parent / name)
    return subprocess.run([executable, *args], cwd=ROOT, capture_output=True, text=True)


def test_the_types_check():
    """mypy over broadcast/ and channels/ (its settings are in pyproject.toml)."""
    result = _tool("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_the_code_is_linted():
    """ruff's rules of pyproject.toml, the ban on asyncio.wait_for included."""
    result = _tool("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted():
    result = _tool("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


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
