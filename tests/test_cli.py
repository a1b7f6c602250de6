"""The newcomer's first minutes with the ``broadcast`` command (issue #17, items 14-17): the
public address follows the port, logs read well on a terminal, errors are one line with a
non-zero exit, and a missing areas file is refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.cli import _at_address
from broadcast.db import Database
from broadcast.settings import Settings
from tests.conftest import ROOT
from tests.support import ServiceProcess, auth, service_env


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``broadcast ARGS`` as a newcomer runs it: no terminal, from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "broadcast.cli", *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
        | {"PYTHONPATH": str(ROOT)}
        | env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_user_that_exists_is_one_line_and_a_non_zero_exit(tmp_path):
    database = f"sqlite:///{tmp_path}/broadcast.db"

    first = run(
        ["user", "add", "adviseur", "--role", "officer"], tmp_path, BROADCAST_DATABASE_URL=database
    )
    again = run(
        ["user", "add", "adviseur", "--role", "officer"], tmp_path, BROADCAST_DATABASE_URL=database
    )

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("bc_")  # the token alone, last
    assert "'adviseur' has no console password" in first.stderr  # no terminal to ask on
    assert again.returncode == 1
    assert again.stderr.strip() == "broadcast: user 'adviseur' exists already"
    assert "Traceback" not in again.stderr + again.stdout


def test_serve_and_demo_refuse_to_start_without_the_areas_file(tmp_path):
    database = f"sqlite:///{tmp_path}/broadcast.db"
    for command in (["serve", "--port", "9"], ["demo"], ["worker"]):
        outcome = run(command, tmp_path, BROADCAST_DATABASE_URL=database)

        assert outcome.returncode == 2, (command, outcome.stderr)
        (line,) = outcome.stderr.strip().splitlines()
        assert "the areas file config/areas.toml does not exist" in line
        assert "BROADCAST_AREAS_FILE" in line


def test_the_public_address_follows_the_port_unless_it_is_set(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no config/broadcast.toml here
    assert _at_address(Settings(), "127.0.0.1", 8731).public_url == "http://127.0.0.1:8731"
    assert _at_address(Settings(), "0.0.0.0", 8080).public_url == "http://127.0.0.1:8080"
    assert _at_address(Settings(), "::1", 8080).public_url == "http://[::1]:8080"
    monkeypatch.setenv("BROADCAST_PUBLIC_URL", "https://crisis.example.nl")
    assert _at_address(Settings(), "127.0.0.1", 8731).public_url == "https://crisis.example.nl"
    # The shipped configuration leaves it unset, so it follows the port from there too.
    monkeypatch.delenv("BROADCAST_PUBLIC_URL")
    monkeypatch.chdir(ROOT)
    assert _at_address(Settings(), "127.0.0.1", 8731).public_url == "http://127.0.0.1:8731"


def test_links_of_a_served_process_point_at_its_own_port(tmp_path):
    database = f"sqlite:///{tmp_path}/broadcast.db"
    env = service_env(database)
    db = Database(database)
    from broadcast.migrate import upgrade

    upgrade(db.engine)
    with db.session_scope() as session:
        _, token = add_user(session, name="lotte", role=Role.officer)
    db.dispose()
    with ServiceProcess(env, tmp_path) as served:
        created = httpx.post(
            f"{served.url}/api/v1/incidents",
            json={"title": "Hoogwater", "severity": "warning"},
            headers=auth(token),
        )
        assert created.status_code == 201, created.text
        assert created.json()["url"].startswith(f"http://127.0.0.1:{served.port}/incidents/")
    with open(served.log_path, encoding="utf-8") as log:
        assert f"public address http://127.0.0.1:{served.port}" in log.read()


def test_the_demo_prints_the_address_it_will_be_served_on(tmp_path):
    outcome = run(
        ["demo", "--port", "8731"],
        tmp_path,
        BROADCAST_DATABASE_URL=f"sqlite:///{tmp_path}/broadcast.db",
        BROADCAST_AREAS_FILE=str(ROOT / "config" / "areas.toml"),
    )

    assert outcome.returncode == 0, outcome.stderr
    last = outcome.stdout.strip().splitlines()[-1]
    assert last == "open http://127.0.0.1:8731 after `broadcast serve --port 8731`"
    assert "8000" not in outcome.stdout
