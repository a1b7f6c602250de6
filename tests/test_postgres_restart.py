"""PostgreSQL restarted in the middle of a fan-out: the service recovers by itself.

On a PostgreSQL cluster of this test's own (``initdb`` and ``pg_ctl`` in a temporary directory, on
a free port; never the shared server), ``broadcast serve`` publishes an update to 2,000 webhook
subscribers; once the receiver has some of them, the server is stopped (``pg_ctl stop -m fast``
closes every connection) and started again. Meanwhile ``/healthz`` says the database is
unavailable; afterwards the service has reconnected (pool pre-ping), re-established LISTEN and
the scheduler's leadership, and every subscriber got the update: none lost. The dispatcher's
safety poll is an hour away, so what goes on after the restart was woken through LISTEN.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx
import psycopg
import pytest

from broadcast.delivery.listener import libpq_url
from tests.support import ServiceProcess, auth, seed, service_env, wait_for

SUBSCRIBERS = 2_000
CUT_AFTER = 100  # deliveries received before the database goes away
BOUND = 400  # at most 2 × the webhook lane's batch are claimed and not yet recorded


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


class Cluster:
    """A PostgreSQL server of the test's own. As root, its commands run as ``postgres``
    (``initdb`` refuses root)."""

    def __init__(self, root: Path):
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self.data, self.log = root / "data", root / "server.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root without runuser: initdb refuses root")
            self.prefix = [runuser, "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self.root = root

    def run(self, *argv: str) -> None:
        done = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}{done.stderr}"

    def init(self) -> None:
        assert self.initdb is not None
        self.run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        assert self.pg_ctl is not None
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c max_connections=100"
        )
        self.run(
            self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        assert self.pg_ctl is not None
        self.run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/broadcast"


@pytest.fixture
def cluster():
    if _binary("initdb") is None or _binary("pg_ctl") is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    # Not under pytest's tmp_path: as root that is private to root, and the server runs as
    # postgres, which must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="broadcast-pg-"))
    cluster = Cluster(root)
    cluster.init()
    cluster.start()
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", autocommit=True
    ) as connection:
        connection.execute("CREATE DATABASE broadcast")
    try:
        yield cluster
    finally:
        subprocess.run(
            [
                *cluster.prefix,
                str(cluster.pg_ctl),
                "-D",
                str(cluster.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


def counts(url: str, update_id: int) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "SELECT state, count(*) FROM deliveries WHERE update_id = %s AND channel = 'webhook' "
            "GROUP BY state",
            (update_id,),
        ).fetchall()
    return dict(rows)


def health(service: ServiceProcess) -> tuple[int, dict]:
    try:
        answer = httpx.get(f"{service.url}/healthz", timeout=30)
    except httpx.HTTPError:
        return 0, {}
    return answer.status_code, answer.json()


def test_the_service_recovers_from_a_postgres_restart_during_a_fan_out(cluster, receiver, tmp_path):
    token = seed(cluster.url, receiver.url, SUBSCRIBERS)
    env = service_env(cluster.url, BROADCAST_SAFETY_POLL_SECONDS="3600")
    with ServiceProcess(env, tmp_path) as service:
        incident = httpx.post(
            f"{service.url}/api/v1/incidents",
            headers=auth(token),
            json={"title": "Hoogwater Maas", "severity": "warning"},
        ).json()
        published = httpx.post(
            f"{service.url}/api/v1/incidents/{incident['id']}/updates",
            headers=auth(token),
            json={"body": "Evacuatie Heumensoord: verlaat het gebied."},
        )
        assert published.status_code == 201, published.text
        update = published.json()
        wait_for(lambda: len(receiver.state.received) >= CUT_AFTER, interval=0.005)

        cluster.stop()
        during = wait_for(lambda: (h := health(service))[0] == 503 and h, interval=0.2)
        before_restart = len(receiver.state.received)
        cluster.start()

        wait_for(lambda: health(service)[0] == 200, timeout=120, interval=0.2)
        arrived = lambda: {r.path for r in receiver.state.received}  # noqa: E731
        wait_for(lambda: len(arrived()) == SUBSCRIBERS, timeout=180, interval=0.2)
        wait_for(lambda: counts(cluster.url, update["id"]) == {"delivered": SUBSCRIBERS})
        # After the restart: a new update goes out too, woken by the re-established LISTEN.
        again = httpx.post(
            f"{service.url}/api/v1/incidents/{incident['id']}/updates",
            headers=auth(token),
            json={"body": "Na de herstart."},
        ).json()
        wait_for(lambda: counts(cluster.url, again["id"]) == {"delivered": SUBSCRIBERS})
        _, after = health(service)
        log = Path(service.log_path).read_text(encoding="utf-8", errors="replace")

    status, body = during
    assert body["status"] == "failing" and body["database"].startswith("unavailable")
    assert body["database_outage"]["ended_at"] is None
    assert after["status"] == "ok"
    outage = after["database_outage"]
    assert outage["ended_at"] is not None and outage["started_at"] <= outage["ended_at"]
    assert CUT_AFTER <= before_restart < SUBSCRIBERS  # the restart fell in the fan-out
    first = [r for r in receiver.state.received if r.document["id"] == update["id"]]
    assert {r.path for r in first} == {f"/r/{n}" for n in range(SUBSCRIBERS)}  # none lost
    assert len(first) - SUBSCRIBERS <= BOUND  # re-sends only of what was claimed, unrecorded
    assert log.count("listening for events on PostgreSQL") >= 2
    assert log.count("scheduler started as leader") >= 2
