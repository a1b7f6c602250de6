"""Users managed from the command line (issue 17, item 11): list, set-password, deactivate,
activate, role, revoke-tokens; refusals are one line and a non-zero exit, every change is in
the audit log, and a deactivated user's token and console session stop working at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from broadcast.audit import AuditEvent
from tests.conftest import ROOT
from tests.support import auth, console_log_in


def run(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess:
    """``broadcast ARGS`` without a terminal, as a script or an operator over ssh runs it."""
    return subprocess.run(
        [sys.executable, "-m", "broadcast.cli", *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
        | {"PYTHONPATH": str(ROOT), "BROADCAST_DATABASE_URL": database_url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def cli(database_url, tmp_path):
    def call(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        outcome = run(list(args), database_url, tmp_path)
        assert "Traceback" not in outcome.stderr + outcome.stdout
        if ok:
            assert outcome.returncode == 0, outcome.stderr
        return outcome

    return call


def _token(outcome: subprocess.CompletedProcess) -> str:
    token = outcome.stdout.strip().splitlines()[-1]
    assert token.startswith("bc_")
    return token


def test_list_shows_users_without_secrets_and_when_they_signed_in(cli, app_factory):
    token = _token(cli("user", "add", "adviseur", "--role", "officer", "--password", "geheim1"))
    cli("user", "add", "beheer", "--role", "admin", "--password", "geheim2")
    with TestClient(app_factory(dispatch=False)) as client:
        assert console_log_in(client, "adviseur", "geheim1").status_code == 303

    listing = cli("user", "list").stdout.splitlines()

    assert listing[0].split() == ["NAME", "ROLE", "STATE", "CREATED", "LAST", "SIGN-IN"]
    adviser, admin = (line.split() for line in listing[1:])
    assert adviser[:3] == ["adviseur", "officer", "active"]
    assert len(adviser) == 7  # created and last sign-in, each a date and a time
    assert admin[:3] == ["beheer", "admin", "active"]
    assert admin[-1] == "-"  # never signed in
    assert token not in "\n".join(listing)
    assert "argon2" not in "\n".join(listing)


def test_deactivating_ends_the_session_and_the_token_at_once(cli, app_factory):
    token = _token(cli("user", "add", "adviseur", "--role", "officer", "--password", "geheim1"))
    cli("user", "add", "beheer", "--role", "admin")
    with TestClient(app_factory(dispatch=False)) as client:
        assert console_log_in(client, "adviseur", "geheim1").status_code == 303
        assert client.get("/console", follow_redirects=False).status_code == 200
        assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 200

        done = cli("user", "deactivate", "adviseur")

        assert "deactivated" in done.stdout
        assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 401
        signed_out = client.get("/console", follow_redirects=False)
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/console/login")
        assert console_log_in(client, "adviseur", "geheim1").status_code == 401
        assert "inactive" in cli("user", "list").stdout

        cli("user", "activate", "adviseur")

        assert console_log_in(client, "adviseur", "geheim1").status_code == 303
        assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 401  # for good
        new = _token(cli("user", "revoke-tokens", "adviseur"))
        assert client.get("/api/v1/incidents", headers=auth(new)).status_code == 200


def test_revoking_gives_a_new_token_and_kills_the_old_one(cli, app_factory):
    old = _token(cli("user", "add", "adviseur", "--role", "officer"))

    new = _token(cli("user", "revoke-tokens", "adviseur"))

    assert new != old
    with TestClient(app_factory(dispatch=False)) as client:
        assert client.get("/api/v1/incidents", headers=auth(old)).status_code == 401
        assert client.get("/api/v1/incidents", headers=auth(new)).status_code == 200


def test_set_password_and_role(cli, app_factory):
    token = _token(cli("user", "add", "vera", "--role", "volunteer"))

    cli("user", "set-password", "vera", "--password", "nieuw-wachtwoord")
    cli("user", "role", "vera", "officer")

    with TestClient(app_factory(dispatch=False)) as client:
        assert console_log_in(client, "vera", "nieuw-wachtwoord").status_code == 303
        created = client.post(
            "/api/v1/incidents",
            json={"title": "Storm", "severity": "info", "areas": []},
            headers=auth(token),
        )
        assert created.status_code == 201, created.text  # an officer now
        with client.app.state.db.session_scope() as session:
            trail = session.exec(
                select(AuditEvent.actor, AuditEvent.action)
                .where(col(AuditEvent.subject).startswith("user:"))
                .order_by(col(AuditEvent.id))
            ).all()
    assert [tuple(row) for row in trail] == [
        ("cli", "user.add"),
        ("cli", "user.password"),
        ("cli", "user.role"),
        ("vera", "console.login"),
    ]


def test_refusals_are_one_line_and_a_non_zero_exit(cli):
    cli("user", "add", "beheer", "--role", "admin")

    cases = {
        ("user", "deactivate", "niemand"): "broadcast: user 'niemand' not found",
        ("user", "set-password", "beheer"): "broadcast: no password: pass --password "
        "(there is no terminal to ask on)",
        ("user", "deactivate", "beheer"): "broadcast: 'beheer' is the last active admin",
        ("user", "role", "beheer", "officer"): "broadcast: 'beheer' is the last active admin",
        ("user", "set-password", "beheer", "--password", ""): "broadcast: the password must "
        "not be empty",
    }
    for args, message in cases.items():
        outcome = cli(*args, ok=False)
        assert outcome.returncode == 1, (args, outcome.stderr)
        assert outcome.stderr.strip() == message, args
    bad_role = cli("user", "role", "beheer", "chef", ok=False)
    assert bad_role.returncode == 2  # typer's usage error names the choices
    assert "officer" in bad_role.stderr
