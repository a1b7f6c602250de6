"""Crash in the middle of a fan-out, and a restart with scheduled work: nothing is lost."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest

from broadcast.common import utcnow
from channels.webhook import WebhookChannel
from tests.support import ServiceProcess, auth, seed, service_env, wait_for

TARGETS = 10_000


@pytest.mark.slow
def test_kill_during_fanout_then_restart_delivers_to_every_target(database_url, receiver, tmp_path):
    token = seed(database_url, receiver.url, TARGETS)
    env = service_env(database_url)
    # Each process is stopped whatever happens: one left running would go on sending this
    # fan-out into the tests that follow (they share the session's database).
    with ServiceProcess(env, tmp_path) as service:
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=auth(token),
            json={"title": "Dijkdoorbraak", "severity": "emergency"},
        ).json()
        update = httpx.post(
            f"{service.url}/api/v1/incidents/{incident['id']}/updates",
            headers=auth(token),
            json={"body": "Verlaat uw woning."},
        ).json()
        assert update["state"] == "published"
        # Generous: at a load average of 19 a quarter of the fan-out took over a minute.
        wait_for(lambda: len(receiver.state.received) >= TARGETS // 4, timeout=300, interval=0.005)
        service.kill()
    received_before_crash = len(receiver.state.received)
    assert received_before_crash < TARGETS, "the crash must happen in the middle of the fan-out"

    with ServiceProcess(env, tmp_path):
        paths = wait_for(
            lambda: (p := {r.path for r in receiver.state.received}) and len(p) == TARGETS and p,
            timeout=600,
            interval=0.1,
        )
    assert paths == {f"/r/{n}" for n in range(TARGETS)}
    duplicates = sum(n - 1 for n in Counter(r.path for r in receiver.state.received).values())
    # Only deliveries sent and not yet recorded are sent again, and a lane holds a send's slot
    # until its outcome is recorded: at most the webhook lane's concurrency (#12 item 4).
    assert duplicates <= WebhookChannel.limits.concurrency == 16
    assert all(r.signature_ok for r in receiver.state.received)


def test_scheduled_update_survives_a_restart(database_url, receiver, tmp_path):
    token = seed(database_url, receiver.url, 1)
    env = service_env(database_url)
    service = ServiceProcess(env, tmp_path).start()
    incident = httpx.post(
        f"{service.url}/api/v1/incidents",
        headers=auth(token),
        json={"title": "Hoogwater", "severity": "warning"},
    ).json()
    publish_at = utcnow() + timedelta(seconds=15)  # room for two requests on a loaded machine
    update = httpx.post(
        f"{service.url}/api/v1/incidents/{incident['id']}/updates",
        headers=auth(token),
        json={"body": "Avondupdate", "publish_at": publish_at.isoformat()},
    ).json()
    assert update["state"] == "scheduled"
    service.kill()
    assert receiver.state.received == []

    service = ServiceProcess(env, tmp_path).start()
    try:
        wait_for(lambda: receiver.state.received, interval=0.1)
        state = httpx.get(f"{service.url}/api/v1/updates/{update['id']}", headers=auth(token))
        assert state.json()["state"] == "published"
        assert utcnow() >= publish_at
    finally:
        service.stop()
    assert [r.document["id"] for r in receiver.state.received] == [update["id"]]
