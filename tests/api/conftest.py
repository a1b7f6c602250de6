"""Fixtures for the API behaviour tests: an officer's token, webhook subscribers that each get
their own path on the local receiver, and a wait until an update's deliveries have settled.

``client`` is the shared one, except that on SQLite it waits until the scheduler has started
before the test begins, so that tests about scheduling start from a known state;
``scheduler_settled`` waits until the scheduler holds an update's publication job.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from tests.support import auth, wait_for

OPEN_STATES = {"pending", "sending"}


def _loop_round_trip(client: TestClient) -> None:
    """Return once the event loop has run every callback queued before this call."""
    client.portal.call(asyncio.sleep, 0)


def _wait_until_started(test_client: TestClient) -> None:
    if test_client.app.state.db.is_postgres:  # readers do not wait for writers there
        return
    scheduler = test_client.app.state.services.scheduler
    wait_for(lambda: scheduler.scheduler is not None and scheduler.scheduler.running)
    _loop_round_trip(test_client)


@pytest.fixture
def started():
    """``with started(TestClient(app)) as client:`` for tests that build their own app."""
    from contextlib import contextmanager

    @contextmanager
    def run(test_client: TestClient):
        with test_client:
            _wait_until_started(test_client)
            yield test_client

    return run


@pytest.fixture
def client(app_factory, started):
    with started(TestClient(app_factory())) as test_client:
        yield test_client


@pytest.fixture
def scheduler_settled(client):
    """``scheduler_settled(update_id)``: wait until the scheduler holds the publication job of a
    just scheduled update and has looked at its job store (no request may run meanwhile)."""

    def wait(update_id: int) -> None:
        if client.app.state.db.is_postgres:
            return
        scheduler = client.app.state.services.scheduler.scheduler
        wait_for(lambda: scheduler.get_job(f"publish-update-{update_id}"))
        time.sleep(0.05)
        _loop_round_trip(client)

    return wait


@pytest.fixture
def token_for(client):
    """``token_for(role, name, display_name="")``: a user's API token. Like ``tests.support``'s,
    but without a console password: hashing one with argon2 costs a third of a second."""

    def make(role: str, name: str, display_name: str = "") -> str:
        with client.app.state.db.session_scope() as session:
            _, token = add_user(session, name=name, role=Role(role), display_name=display_name)
        return token

    return make


@pytest.fixture
def officer(token_for) -> str:
    return token_for("officer", "olga", display_name="Olga Officier")


@pytest.fixture
def settle(client, officer):
    """``settle(update_id)``: wait until no delivery of the update is pending or being sent;
    returns the counts ``{"<channel>": {"<state>": n}}``."""

    def wait(update_id: int) -> dict:
        def counts():
            response = client.get(f"/api/v1/updates/{update_id}/deliveries", headers=auth(officer))
            assert response.status_code == 200, response.text
            found = response.json()
            states = {state for per_channel in found.values() for state in per_channel}
            return found if found and not states & OPEN_STATES else None

        return wait_for(counts)

    return wait


@pytest.fixture
def subscribe(client, officer, receiver):
    """``subscribe(name, areas=..., language=..., min_severity=...)``: a webhook subscriber whose
    messages arrive at ``/s/<name>`` on the receiver; returns its id."""

    def add(name: str, areas=(), language: str = "nl", min_severity: str = "info") -> int:
        response = client.post(
            "/api/v1/subscribers",
            headers=auth(officer),
            json={
                "channel": "webhook",
                "address": f"{receiver.url}/s/{name}",
                "areas": list(areas),
                "language": language,
                "min_severity": min_severity,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return add


@pytest.fixture
def arrivals(receiver):
    """``arrivals(update_id)``: the receiver paths the update's webhook documents arrived at."""

    def paths(update_id: int) -> list[str]:
        with receiver.state.lock:
            return sorted(r.path for r in receiver.state.received if r.document["id"] == update_id)

    return paths
