"""Receipts across processes (#12 item 2): two ``broadcast worker`` processes send SMS through
the Twilio stand-in (a process of its own), which calls the status callback of a
``broadcast serve --no-dispatch`` web process as soon as it has answered, so the "sent" and
"delivered" callbacks race the worker's own write-back of the send, from another process.
Every callback is applied exactly once whichever comes first, without the sweeper's help: every
delivery ends ``delivered`` and no receipt is left waiting."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import _truncate_postgres
from tests.fakes.process import StandInProcess
from tests.support import (
    CliProcess,
    add_subscribers,
    auth,
    delivery_states,
    service_env,
    wait_for,
)

SMS = 200
NUMBERS = [f"+3162{n:07d}" for n in range(SMS)]


def early_receipts(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        waiting = connection.execute(text("SELECT count(*) FROM early_receipts")).scalar_one()
    engine.dispose()
    return waiting


def officer_token(env: dict[str, str], tmp) -> str:
    adding = CliProcess(
        "user-add",
        ["broadcast", "user", "add", "lotte", "--role", "officer", "--password", "correct horse"],
        env,
        tmp,
    )
    adding.process.wait(120)
    adding.stop()
    assert adding.process.returncode == 0, adding.log()
    return adding.log().strip().splitlines()[-1].split()[-1]


@pytest.fixture
def cluster(_postgres_schema, tmp_path):
    if _postgres_schema is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    _truncate_postgres(_postgres_schema)
    add_subscribers(_postgres_schema, [("sms", number) for number in NUMBERS])
    with StandInProcess("twilio") as twilio:
        sms = {
            "account_sid": twilio.info["account_sid"],
            "auth_token": twilio.info["auth_token"],
            "from": "+3197010000000",
            "api_url": twilio.url,
        }
        env = service_env(
            _postgres_schema,
            BROADCAST_CHANNELS_ENABLED="sms",
            BROADCAST_CHANNELS=json.dumps({"sms": sms}),
            BROADCAST_MEDIA_DIR=str(tmp_path / "media"),
            BROADCAST_RECEIPT_SWEEP_SECONDS="0",  # no safety net: callbacks must apply alone
        )
        command = ["broadcast", "serve", "--no-dispatch", "--host", "127.0.0.1", "--port", "0"]
        web = CliProcess("web", command, env, tmp_path)
        workers_env = env | {"BROADCAST_PUBLIC_URL": web.url}  # where callbacks are sent
        workers = [
            CliProcess(f"worker-{n}", ["broadcast", "worker"], workers_env, tmp_path)
            for n in (1, 2)
        ]
        processes = [web, *workers]
        try:
            for process in processes:
                wait_for(process.ready, timeout=180, interval=0.2)
            yield web, officer_token(env, tmp_path), _postgres_schema
        finally:
            for process in processes:
                process.stop()


def test_status_callbacks_racing_the_write_back_from_another_process_are_applied_once(cluster):
    web, token, database_url = cluster
    with httpx.Client(base_url=web.url, headers=auth(token), timeout=60) as api:
        incident = api.post(
            "/api/v1/incidents", json={"title": "Hoogwater Maas", "severity": "warning"}
        )
        assert incident.status_code == 201, incident.text
        update = api.post(
            f"/api/v1/incidents/{incident.json()['id']}/updates",
            json={"body": "Zandzakken bij de brandweerkazerne."},
        )
        assert update.status_code == 201, update.text
    update_id = update.json()["id"]

    def delivered() -> bool:
        return delivery_states(database_url, update_id)[("sms", "delivered")] == SMS

    wait_for(delivered, timeout=600, interval=0.5)
    assert delivery_states(database_url, update_id) == Counter({("sms", "delivered"): SMS})
    assert early_receipts(database_url) == 0  # none left waiting for a write-back
