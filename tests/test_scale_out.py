"""The scale-out of deploy/compose.yaml, run as processes on the local PostgreSQL: two
``broadcast serve --no-dispatch`` web processes and three ``broadcast worker`` processes, started
with the commands and settings of that file (and deploy/systemd's units checked against the CLI).

- An update published through web process A reaches the live pages (SSE) of web process B.
- Killing the worker that leads the scheduler, a scheduled update still goes out: another worker
  takes the lead and publishes it, and a worker dispatches it.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shlex
import subprocess
import sys
import threading
from datetime import timedelta

import httpx
import psycopg
import pytest
import yaml

from broadcast.cli import app as cli
from broadcast.common import utcnow
from broadcast.delivery.listener import libpq_url
from tests.conftest import ROOT, _truncate_postgres
from tests.support import CliProcess as Process
from tests.support import auth, free_port, seed, service_env, wait_for

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
LEADER_LINE = "scheduler started as leader"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def broadcast_services(kind: str) -> dict[str, dict]:
    """The compose services whose command is ``broadcast <kind> …``."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command", [None, None])[:2] == ["broadcast", kind]
    }


@pytest.fixture(scope="module")
def cluster(_postgres_schema, tmp_path_factory):
    """migrate, web-1, web-2, worker-1..3 from deploy/compose.yaml, on the test's PostgreSQL."""
    if _postgres_schema is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    from tests.conftest import WEBHOOK_SECRET
    from tests.fakes.receiver import receiver_app
    from tests.fakes.server import FakeServer

    _truncate_postgres(_postgres_schema)
    tmp = tmp_path_factory.mktemp("scale-out")
    services = compose()["services"]
    app = receiver_app(WEBHOOK_SECRET)
    with FakeServer(app) as receiver:
        receiver.state = app.state.receiver
        token = seed(_postgres_schema, receiver.url, 2)  # two webhook subscribers
        web_port = free_port()

        def env_of(name: str) -> dict[str, str]:
            own = {k: str(v) for k, v in services[name].get("environment", {}).items()}
            return own | service_env(
                _postgres_schema,
                BROADCAST_PUBLIC_URL=f"http://127.0.0.1:{web_port}",
                BROADCAST_MEDIA_DIR=str(tmp / "media"),
                BROADCAST_LOG_JSON="false",
            )

        migrate = subprocess.run(
            [sys.executable, "-m", "broadcast.cli", *services["migrate"]["command"][1:]],
            cwd=tmp,
            env=os.environ | env_of("migrate"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        processes: dict[str, Process] = {}
        try:
            for name in [*broadcast_services("serve"), *broadcast_services("worker")]:
                processes[name] = Process(name, services[name]["command"], env_of(name), tmp)
            for process in processes.values():
                wait_for(process.ready, timeout=180, interval=0.2)
            yield {
                "processes": processes,
                "receiver": receiver,
                "token": token,
                "database_url": _postgres_schema,
            }
        finally:
            for process in processes.values():
                process.stop()


# --- the files ----------------------------------------------------------------------------------


def test_compose_runs_postgres_two_web_processes_and_three_workers():
    services = compose()["services"]
    web, workers = broadcast_services("serve"), broadcast_services("worker")

    assert services["postgres"]["image"].startswith("postgres:")
    assert len(web) == 2 and all("--no-dispatch" in s["command"] for s in web.values())
    assert len(workers) == 3
    published = sorted(int(s["ports"][0].split(":")[0]) for s in web.values())
    assert len(set(published)) == 2  # each web process on a port of its own
    every = [*web.values(), *workers.values(), services["migrate"]]
    urls = {s["environment"]["BROADCAST_DATABASE_URL"] for s in every}
    assert urls == {"postgresql+psycopg://broadcast:broadcast@postgres:5432/broadcast"}
    assert all("media:/app/data/media" in s["volumes"] for s in every)  # uploads are shared
    for service in [*web.values(), *workers.values()]:
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("broadcast-migrate.service", ""),
        ("broadcast-web@.service", "8001"),
        ("broadcast-worker@.service", "1"),
    ],
)
def test_systemd_units_start_commands_the_cli_has(name, instance):
    """Each ExecStart is a command of ``broadcast`` with options it accepts (checked by asking
    the CLI for that command's help with exactly those options)."""
    from typer.testing import CliRunner

    parsed = unit(name)
    assert parsed["Service"]["EnvironmentFile"] == "/etc/broadcast/broadcast.env"
    argv = shlex.split(parsed["Service"]["ExecStart"].replace("%i", instance))
    assert argv[0].endswith("/bin/broadcast")
    outcome = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert outcome.exit_code == 0, outcome.output
    if "serve" in argv:
        assert "--no-dispatch" in argv and argv[argv.index("--port") + 1] == instance
    if name != "broadcast-migrate.service":
        assert parsed["Unit"]["Requires"] == "broadcast-migrate.service"
        assert parsed["Service"]["Restart"] == "always"


# --- the processes ------------------------------------------------------------------------------


class LiveReader(threading.Thread):
    """A browser on an incident page of one web process: the ids of the updates it was sent."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.connected, self.ids = url, threading.Event(), []
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=300))

    def run(self) -> None:
        with contextlib.suppress(httpx.HTTPError), self._client.stream("GET", self.url) as answer:
            self.connected.set()
            event = ""
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("id:") and event == "update":
                    self.ids.append(int(line.split(":", 1)[1]))

    def close(self) -> None:
        self._client.close()


def new_incident(web: Process, token: str) -> dict:
    answer = httpx.post(
        f"{web.url}/api/v1/incidents",
        headers=auth(token),
        json={"title": "Hoogwater Maas", "severity": "warning"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def post_update(web: Process, token: str, incident_id: int, **fields) -> dict:
    answer = httpx.post(
        f"{web.url}/api/v1/incidents/{incident_id}/updates", headers=auth(token), json=fields
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_an_update_published_through_one_web_process_reaches_live_pages_of_the_other(cluster):
    web_a, web_b = (cluster["processes"][name] for name in broadcast_services("serve"))
    token, receiver = cluster["token"], cluster["receiver"]
    incident = new_incident(web_a, token)
    reader = LiveReader(f"{web_b.url}/incidents/{incident['slug']}/events")
    reader.start()
    try:
        assert reader.connected.wait(60), "web process B did not answer the event stream"
        published: list[int] = []

        def arrived() -> bool:
            # Web B subscribes to its bus a moment after answering; an update published before
            # that is not sent live (nor replayed, without Last-Event-ID), so publish again
            # until one arrives: the first that does came from A through PostgreSQL.
            if not reader.ids:
                published.append(
                    post_update(web_a, token, incident["id"], body=f"Peilstand {len(published)}.")[
                        "id"
                    ]
                )
            return bool(reader.ids)

        wait_for(arrived, timeout=120, interval=2)
        wait_for(lambda: len(receiver.state.received) >= 2 * len(published))
    finally:
        reader.close()
    assert reader.ids[0] in published
    assert set(reader.ids) <= set(published)
    # A worker dispatched every update to both webhook subscribers, each once.
    sent = [r.document["id"] for r in receiver.state.received]
    assert sorted(sent) == sorted(published * 2)


def leader(processes: dict[str, Process]) -> list[str]:
    workers = broadcast_services("worker")
    return [n for n in workers if processes[n].running() and LEADER_LINE in processes[n].log()]


def test_a_scheduled_update_goes_out_when_the_leading_scheduler_is_killed(cluster):
    processes, token = cluster["processes"], cluster["token"]
    receiver = cluster["receiver"]
    web = processes[next(iter(broadcast_services("serve")))]
    wait_for(lambda: len(leader(processes)) == 1)
    (old_leader,) = leader(processes)
    incident = new_incident(web, token)
    publish_at = (utcnow() + timedelta(seconds=15)).isoformat()
    update = post_update(
        web, token, incident["id"], body="Gepland: dijkinspectie.", publish_at=publish_at
    )
    assert update["state"] == "scheduled"

    def stored_by_the_leader() -> bool:  # the leader has put the job in the job store
        with psycopg.connect(libpq_url(cluster["database_url"]), autocommit=True) as connection:
            found = connection.execute(
                "SELECT count(*) FROM apscheduler_jobs WHERE id = %s",
                (f"publish-update-{update['id']}",),
            ).fetchone()
        return bool(found and found[0])

    wait_for(stored_by_the_leader)
    processes[old_leader].kill()

    def state() -> str:
        answer = httpx.get(f"{web.url}/api/v1/incidents/{incident['id']}", headers=auth(token))
        return next(u["state"] for u in answer.json()["updates"] if u["id"] == update["id"])

    assert state() == "scheduled"  # killed before it was due: the old leader did not publish it
    wait_for(lambda: state() == "published", timeout=180, interval=0.5)
    wait_for(lambda: sum(r.document["id"] == update["id"] for r in receiver.state.received) == 2)
    survivors = leader(processes)
    assert len(survivors) == 1 and survivors[0] != old_leader


def test_systemd_units_pass_systemd_analyze(tmp_path):
    """``systemd-analyze verify`` on the units as an operator enables them (instances named);
    the only complaint allowed is that this machine has no /srv/broadcast installation."""
    import shutil

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    names = {
        "broadcast-migrate.service": "broadcast-migrate.service",
        "broadcast-web@.service": "broadcast-web@8001.service",
        "broadcast-worker@.service": "broadcast-worker@1.service",
    }
    for source, target in names.items():
        shutil.copy(DEPLOY / "systemd" / source, tmp_path / target)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / t) for t in names.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = [
        line
        for line in (verified.stdout + verified.stderr).splitlines()
        if line.strip() and "/srv/broadcast/.venv/bin/broadcast is not executable" not in line
    ]
    assert complaints == []
