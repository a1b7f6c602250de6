"""``broadcast serve --workers N``: several web processes on PostgreSQL, live updates reaching
the browsers of every one of them; refused on SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.cli import app as cli
from broadcast.db import Database
from tests.conftest import ROOT, _truncate_postgres
from tests.support import ServiceProcess, auth, wait_for

MAX_CONNECTIONS = 64  # SSE connections opened at most until two workers hold some


def test_workers_are_refused_on_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path}/broadcast.db")

    outcome = CliRunner().invoke(cli, ["serve", "--workers", "2"])

    assert outcome.exit_code == 2
    assert "SQLite runs one process; use PostgreSQL for --workers" in outcome.output


@pytest.fixture
def postgres_url(request) -> str:
    url = request.getfixturevalue("_postgres_schema")
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    _truncate_postgres(url)
    return url


def officer_token(database_url: str) -> str:
    db = Database(database_url)
    with db.session_scope() as session:
        _, token = add_user(session, name="officer", role=Role.officer)
    db.dispose()
    return token


class LiveReader(threading.Thread):
    """One browser on the incident page: its own TCP connection to the events stream."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.connected, self.received = url, threading.Event(), threading.Event()
        self.client_port = 0
        self.data = ""
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=120))

    def run(self) -> None:
        with self._client.stream("GET", self.url) as response:
            stream = response.extensions["network_stream"]
            self.client_port = stream.get_extra_info("client_addr")[1]
            self.connected.set()
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "update":
                    self.data += line.split(":", 1)[1]
                elif not line and self.data:
                    self.received.set()
                    return

    def close(self) -> None:
        self._client.close()


def serving_pid(server_port: int, client_port: int, candidates: set[int]) -> int | None:
    """Which process holds the server side of the connection (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            if local == server_port and remote == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            links = {p.readlink().as_posix() for p in Path(f"/proc/{pid}/fd").iterdir()}
        except (FileNotFoundError, PermissionError):
            continue
        if inodes & links:
            return pid
    return None


def started_workers(service: ServiceProcess) -> int:
    """Workers that have finished their start-up (each logs it), so that both accept."""
    with open(service.log_path, encoding="utf-8", errors="replace") as log:
        return log.read().count("Application startup complete.")


def children_of(parent: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_an_update_reaches_the_browsers_of_every_worker(postgres_url, tmp_path):
    token = officer_token(postgres_url)
    env = {
        "BROADCAST_DATABASE_URL": postgres_url,
        "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
        "BROADCAST_MEDIA_DIR": str(tmp_path / "media"),
        "BROADCAST_CHANNELS_ENABLED": "platform",
        "BROADCAST_LOG_JSON": "false",
        "BROADCAST_SAFETY_POLL_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
    }
    readers: list[LiveReader] = []
    service = ServiceProcess(env, tmp_path, "--workers", "2")
    service.startup_seconds = 120  # two interpreters import the application side by side
    try:
        service.start()
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=auth(token),
            json={"title": "Hoogwater Maas", "severity": "warning"},
        ).json()
        wait_for(lambda: started_workers(service) >= 2, timeout=120, interval=0.2)
        workers = children_of(service.process.pid)
        events_url = f"{service.url}/incidents/{incident['slug']}/events"
        serving: dict[int | None, list[LiveReader]] = {}
        while len(serving) < 2:  # until browsers are connected to two of the workers
            assert len(readers) < MAX_CONNECTIONS, f"connections by pid: {serving}"
            reader = LiveReader(events_url)
            reader.start()
            assert reader.connected.wait(30), "the events stream did not answer"
            readers.append(reader)
            pid = serving_pid(service.port, reader.client_port, workers)
            assert pid is not None, "no worker holds the connection"
            serving.setdefault(pid, []).append(reader)

        published = httpx.post(
            f"{service.url}/api/v1/incidents/{incident['id']}/updates",
            headers=auth(token),
            json={"body": "Zandzakken bij de brandweerkazerne."},
        )
        assert published.status_code == 201, published.text

        for reader in readers:
            assert reader.received.wait(60), "a browser did not get the update"
            assert "Zandzakken bij de brandweerkazerne." in reader.data
    finally:
        for reader in readers:
            reader.close()
        service.stop()  # also when it never became healthy: no supervisor is left behind
