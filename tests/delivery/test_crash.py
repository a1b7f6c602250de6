"""Crash in the middle of a fan-out, and a restart with scheduled work: nothing is lost."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.migrate import upgrade
from broadcast.subscribers.models import Subscriber
from tests.conftest import ROOT, WEBHOOK_SECRET
from tests.support import ServiceProcess, auth, wait_for

TARGETS = 10_000


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "BROADCAST_DATABASE_URL": database_url,
        "BROADCAST_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BROADCAST_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on 127.0.0.1
        "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
        "BROADCAST_LOG_JSON": "false",
        "BROADCAST_LEASE_SECONDS": "3",
        "BROADCAST_SAFETY_POLL_SECONDS": "0.5",
        "BROADCAST_CHANNELS_ENABLED": "platform,webhook",
        "PYTHONPATH": str(ROOT),
    } | extra


def seed(database_url: str, receiver_url: str, subscribers: int) -> str:
    db = Database(database_url)
    upgrade(db.engine)
    with db.session_scope() as session:
        _, token = add_user(session, name="officer", role=Role.officer)
        if subscribers:
            session.execute(
                insert(Subscriber.__table__),
                [
                    {
                        "channel": "webhook",
                        "address": f"{receiver_url}/r/{n}",
                        "language": "nl",
                        "min_severity": "info",
                        "state": "active",
                        "created_at": utcnow(),
                    }
                    for n in range(subscribers)
                ],
            )
    db.dispose()
    return token


@pytest.mark.slow
def test_kill_during_fanout_then_restart_delivers_to_every_target(database_url, receiver, tmp_path):
    token = seed(database_url, receiver.url, TARGETS)
    env = service_env(database_url)
    service = ServiceProcess(env, tmp_path).start()
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

    wait_for(lambda: len(receiver.state.received) >= TARGETS // 4, timeout=60, interval=0.005)
    service.kill()
    received_before_crash = len(receiver.state.received)
    assert received_before_crash < TARGETS, "the crash must happen in the middle of the fan-out"

    service = ServiceProcess(env, tmp_path).start()
    try:
        paths = wait_for(
            lambda: (p := {r.path for r in receiver.state.received}) and len(p) == TARGETS and p,
            timeout=120,
            interval=0.1,
        )
    finally:
        service.stop()
    assert paths == {f"/r/{n}" for n in range(TARGETS)}
    duplicates = sum(n - 1 for n in Counter(r.path for r in receiver.state.received).values())
    in_flight_bound = 2 * 200 + 50  # two claimed batches plus one recording interval
    assert duplicates <= in_flight_bound
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
    publish_at = utcnow() + timedelta(seconds=6)
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
        wait_for(lambda: receiver.state.received, timeout=30, interval=0.1)
        state = httpx.get(f"{service.url}/api/v1/updates/{update['id']}", headers=auth(token))
        assert state.json()["state"] == "published"
        assert utcnow() >= publish_at
    finally:
        service.stop()
    assert [r.document["id"] for r in receiver.state.received] == [update["id"]]
