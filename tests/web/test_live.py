"""Live pages over real HTTP: a resident's open timeline receives each new update as an SSE event,
also when another process (a worker) sends it and the web process only LISTENs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading

import httpx
import pytest

from tests.support import ServiceProcess, auth, seed, service_env, wait_for


def follow(
    url: str, events: list[dict], ready: threading.Event, headers: dict | None = None
) -> None:
    """Read Server-Sent Events the way a browser's EventSource does, into ``events``; ``ready``
    is set at the stream's first comment, which the server writes once it follows the incident."""
    with (
        contextlib.suppress(httpx.RemoteProtocolError),
        httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=120)) as response,
    ):
        event: dict = {}
        for line in response.iter_lines():
            if not line:
                if "data" in event:
                    events.append(event)
                event = {}
            elif line.startswith(":"):
                ready.set()
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                event[field] = (
                    f"{event[field]}\n{value}" if field == "data" and field in event else value
                )


def open_timeline(
    service: ServiceProcess, slug: str, last_event_id: str | None = None
) -> tuple[list[dict], threading.Event]:
    events: list[dict] = []
    ready = threading.Event()
    headers = {"Last-Event-ID": last_event_id} if last_event_id else None
    thread = threading.Thread(
        target=follow,
        args=(f"{service.url}/incidents/{slug}/events", events, ready, headers),
        daemon=True,
    )
    thread.start()
    assert ready.wait(60), "the server never said it follows the incident"
    return events, thread


def publish(service: ServiceProcess, token: str, incident_id: int, body: str) -> dict:
    response = httpx.post(
        f"{service.url}/api/v1/incidents/{incident_id}/updates",
        headers=auth(token),
        json={"body": body},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_open_timeline_receives_new_update_without_reload(database_url, receiver, tmp_path):
    token = seed(database_url, receiver.url, 0)
    with ServiceProcess(service_env(database_url), tmp_path) as service:
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=auth(token),
            json={"title": "Hoogwater", "severity": "warning"},
        ).json()
        events, _ = open_timeline(service, incident["slug"])
        update = publish(service, token, incident["id"], "Dijk bij Mook houdt <stand>.")
        event = wait_for(lambda: events and events[0], timeout=60)
    assert event["event"] == "update" and event["id"] == str(update["id"])
    assert f'id="update-{update["id"]}"' in event["data"]
    assert "Dijk bij Mook houdt &lt;stand&gt;." in event["data"]  # escaped, never raw HTML


def test_a_reconnecting_browser_gets_what_it_missed_then_what_is_new(
    database_url, receiver, tmp_path
):
    token = seed(database_url, receiver.url, 0)
    with ServiceProcess(service_env(database_url), tmp_path) as service:
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=auth(token),
            json={"title": "Hoogwater", "severity": "warning"},
        ).json()
        seen = publish(service, token, incident["id"], "Gezien voor de storing.")
        missed = [publish(service, token, incident["id"], f"Gemist {n}.")["id"] for n in (1, 2)]
        events, _ = open_timeline(service, incident["slug"], last_event_id=str(seen["id"]))
        wait_for(lambda: len(events) >= 2, timeout=60)
        new = publish(service, token, incident["id"], "Na het herverbinden.")
        wait_for(lambda: len(events) >= 3, timeout=60)
    assert [e["id"] for e in events] == [*map(str, missed), str(new["id"])]  # each once, in order
    assert "Gemist 1." in events[0]["data"] and "Na het herverbinden." in events[2]["data"]


def test_worker_process_dispatches_what_the_web_process_published(database_url, receiver, tmp_path):
    """Scale-out on PostgreSQL: the web tier (--no-dispatch) and a worker meet only through the
    database. The worker's safety poll is an hour away here, so an update that reaches the
    receiver within the test's (generous) wait was handed over by NOTIFY."""
    if not database_url.startswith("postgresql"):
        pytest.skip("processes share work through PostgreSQL (SQLite is the one-process mode)")
    token = seed(database_url, receiver.url, 3)
    env = service_env(database_url, BROADCAST_SAFETY_POLL_SECONDS="3600")
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "broadcast.cli", "worker"],
        cwd=tmp_path,
        env=os.environ | env,
        stdout=open(worker_log, "wb"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )
    try:
        with ServiceProcess(env, tmp_path, "--no-dispatch") as web:
            # The worker has migrated, loaded its channels and is LISTENing.
            wait_for(lambda: b"worker running" in worker_log.read_bytes(), timeout=60)
            incident = httpx.post(
                f"{web.url}/api/v1/incidents",
                headers=auth(token),
                json={"title": "Hoogwater", "severity": "warning"},
            ).json()
            events, _ = open_timeline(web, incident["slug"])
            update = publish(web, token, incident["id"], "Zandzakken bij de kazerne.")
            wait_for(lambda: len(receiver.state.received) == 3, timeout=60)
            wait_for(lambda: events)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert {r.document["id"] for r in receiver.state.received} == {update["id"]}
    assert events[0]["id"] == str(update["id"])  # the worker's platform send reached the web SSE
    assert json.dumps(events)  # events are plain data
