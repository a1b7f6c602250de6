"""Short builder functions for tests (no factory framework)."""

from __future__ import annotations

import time
from collections.abc import Callable

from broadcast.auth.models import Role
from broadcast.auth.service import add_user


def token_for(app, role: str, name: str | None = None, display_name: str = "") -> str:
    with app.state.db.session_scope() as session:
        _, token = add_user(session, name=name or f"{role}-user", role=Role(role),
                            display_name=display_name, password="correct horse")
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


def new_incident(client, token: str, **fields) -> dict:
    body = {"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook"]} | fields
    response = client.post("/api/v1/incidents", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


def post_update(client, token: str, incident_id: int, **fields) -> dict:
    body = {"body": "Het water stijgt."} | fields
    response = client.post(f"/api/v1/incidents/{incident_id}/updates", json=body,
                           headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()
