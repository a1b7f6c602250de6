"""Short builder functions for tests (no factory framework)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from broadcast.auth.models import Role
from broadcast.auth.service import add_user


def token_for(app, role: str, name: str | None = None, display_name: str = "") -> str:
    with app.state.db.session_scope() as session:
        _, token = add_user(
            session,
            name=name or f"{role}-user",
            role=Role(role),
            display_name=display_name,
            password="correct horse",
        )
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll until ``condition()`` is truthy; fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def console_log_in(client, name: str, password: str = "correct horse", **fields):
    """Sign in on the console's login form as a browser does: the form's token, our origin."""
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
    return client.post(
        "/console/login",
        data={"username": name, "password": password, "next": "/console", "csrf": csrf} | fields,
        headers={"Origin": str(client.base_url)},
        follow_redirects=False,
    )


def console_headers(client) -> dict[str, str]:
    """What a signed-in page's script sends with a state-changing request."""
    page = client.get("/console")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]
    return {"Origin": str(client.base_url), "X-CSRF-Token": csrf}


def new_incident(client, token: str, **fields) -> dict:
    body = {"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook"]} | fields
    response = client.post("/api/v1/incidents", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


def post_update(client, token: str, incident_id: int, **fields) -> dict:
    body = {"body": "Het water stijgt."} | fields
    response = client.post(
        f"/api/v1/incidents/{incident_id}/updates", json=body, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return response.json()


class ServiceProcess:
    """``broadcast serve`` in a child process, as an operator runs it (and can kill it)."""

    startup_seconds = 30.0  # until /healthz answers

    def __init__(self, env: dict[str, str], cwd, *args: str):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.cwd, self.args, self.process = env, cwd, args, None

    def start(self) -> ServiceProcess:
        import os
        import subprocess
        import sys

        import httpx

        command = [
            sys.executable,
            "-m",
            "broadcast.cli",
            "serve",
            "--port",
            str(self.port),
            *self.args,
        ]
        self.log_path = f"{self.cwd}/serve-{self.port}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=os.environ | self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

        def healthy():
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert self.process.poll() is None, "broadcast serve exited"
                return False

        wait_for(healthy, timeout=self.startup_seconds, interval=0.1)
        return self

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash or a power cut."""
        self.process.kill()
        self.process.wait()
        self.log.close()
        self.check_log()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.log.close()
        self.check_log()

    def check_log(self) -> None:
        """What the service wrote holds no personal data (tests/conftest.py checks in-process)."""
        from tests.conftest import personal_data_in

        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            leaks = [f"{what}: {line}" for line in log if (what := personal_data_in(line))]
        assert not leaks, "personal data in the service's log:\n" + "".join(leaks[:10])
