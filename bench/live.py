"""Live-update benchmark: N browsers follow one incident over Server-Sent Events; one update is
published; how long until the last of them has it, and how ``/healthz`` answers meanwhile.

    python -m bench.live [--clients 1000 5000 10000] [--output FILE]

Ours: ``broadcast serve`` (one process, dispatcher on, SQLite, the demo scenario); the update is
posted through the API, so the figure includes the publishing transaction, the dispatcher's
platform send and the live announcement. Baseline, in the same run: sse-starlette with one
``asyncio.Queue`` per client (the textbook pattern), where a POST puts a ready card of the same
size into every queue. The clients are raw keep-alive connections on asyncio and uvloop in one
process of their own; arrival times use CLOCK_MONOTONIC, one clock for the whole machine. A
separate process asks ``/healthz`` one request after another from just before the publish until
the last client has the update (p99 of those answers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import HOST, SPAWN, clock_ns, isolate_environment, load_average, machine_facts
from bench.common import percentile as pct
from bench.public import free_port, service_env, start, start_broadcast

TARGET_SECONDS = 1.0  # 10,000 clients
CONNECT_BATCH = 250

# --- clients ------------------------------------------------------------------------------------


async def _follow(port: int, path: str, ready: asyncio.Semaphore, arrivals: list[int], done):
    reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n"
    writer.write(request.encode())
    await reader.readuntil(b"\r\n\r\n")
    ready.release()
    seen = b""
    while b"event: update" not in seen:
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError("stream closed before the update")
        seen = seen[-64:] + chunk
    arrivals.append(clock_ns())
    await done.wait()
    writer.close()


def _clients_main(port: int, path: str, count: int, to_parent, from_parent) -> None:
    import uvloop

    async def run() -> None:
        arrivals: list[int] = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        tasks = []
        for first in range(0, count, CONNECT_BATCH):
            ready = asyncio.Semaphore(0)
            batch = min(CONNECT_BATCH, count - first)
            tasks += [
                asyncio.ensure_future(_follow(port, path, ready, arrivals, done))
                for _ in range(batch)
            ]
            for _ in range(batch):
                await ready.acquire()
        to_parent.put("ready")
        while len(arrivals) < count:
            await asyncio.sleep(0.01)
            if any(t.done() and t.exception() for t in tasks):
                raise next(t.exception() for t in tasks if t.done() and t.exception())
        to_parent.put((min(arrivals), max(arrivals)))
        await loop.run_in_executor(None, from_parent.get)  # the parent has what it needs
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    uvloop.run(run())


def _probe_main(url: str, stop, results) -> None:
    latencies = []
    with httpx.Client(timeout=30) as client:
        client.get(f"{url}/healthz").raise_for_status()
        results.put("ready")
        while stop.empty():
            started = time.perf_counter()
            client.get(f"{url}/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
    results.put(latencies)


def fan_out(url: str, path: str, count: int, publish) -> dict:
    """Open ``count`` streams, publish, and time the last arrival and /healthz meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    to_parent, from_parent = SPAWN.Queue(), SPAWN.Queue()
    clients = SPAWN.Process(
        target=_clients_main, args=(port, path, count, to_parent, from_parent), daemon=True
    )
    clients.start()
    assert to_parent.get(timeout=600) == "ready"
    time.sleep(1)  # the server has registered the last of them
    stop, probe_results = SPAWN.Queue(), SPAWN.Queue()
    probe = SPAWN.Process(target=_probe_main, args=(url, stop, probe_results), daemon=True)
    probe.start()
    assert probe_results.get(timeout=60) == "ready"
    started = clock_ns()
    publish()
    first, last = to_parent.get(timeout=600)
    stop.put(True)
    latencies = probe_results.get(timeout=60)
    from_parent.put(True)
    clients.join(timeout=120)
    probe.join(timeout=30)
    return {
        "first": (first - started) / 1e9,
        "last": (last - started) / 1e9,
        "healthz_p99": pct(latencies, 99) * 1000,
        "healthz_n": len(latencies),
    }


# --- the servers ---------------------------------------------------------------------------------

BASELINE_APP = """
import asyncio, sys, uvicorn
from fastapi import FastAPI
from sse_starlette.sse import EventSourceResponse
app = FastAPI()
queues = set()
card = "<article>" + "x" * int(sys.argv[2]) + "</article>"
@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
@app.get("/events")
async def events():
    queue = asyncio.Queue()
    async def stream():
        queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)
    return EventSourceResponse(stream(), ping=15)
@app.post("/publish/{update_id}")
async def publish(update_id: int):
    for queue in list(queues):
        queue.put_nowait({"event": "update", "id": str(update_id), "data": card})
    return {"queued": len(queues)}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, backlog=4096)
"""


def start_baseline(workdir: Path, card_size: int) -> tuple[subprocess.Popen, str]:
    (workdir / "sse_baseline.py").write_text(BASELINE_APP)
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "sse_baseline.py", str(port), str(card_size)]
    return start(command, os.environ, workdir, f"{url}/healthz", workdir / "sse.log"), url


def officer_token(workdir: Path, database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "broadcast.cli", "user", "add", "bench", "--role", "officer"],
        env=service_env(database_url),
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
        input="",
    )
    return done.stdout.strip().splitlines()[-1]


def measure(counts: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite:///{workdir}/broadcast.db"
        ours, ours_url = start_broadcast(workdir, database_url)
        token = officer_token(workdir, database_url)
        headers = {"Authorization": f"Bearer {token}"}
        incident = httpx.post(
            f"{ours_url}/api/v1/incidents",
            headers=headers,
            json={"title": "Bench hoogwater", "severity": "warning", "areas": ["mook"]},
        ).json()
        body = "Dijkbewaking: de kade bij Mook wordt verhoogd; zandzakken bij de brandweer. " * 3

        def publish_ours() -> None:
            answer = httpx.post(
                f"{ours_url}/api/v1/incidents/{incident['id']}/updates",
                headers=headers,
                json={"body": body, "channels": ["platform"]},
                timeout=60,
            )
            answer.raise_for_status()

        card_size = len(body) + 600  # about what our card adds around the text
        baseline, baseline_url = start_baseline(workdir, card_size)
        try:
            for count in counts:
                for name, url, path, publish in (
                    ("ours", ours_url, f"/incidents/{incident['slug']}/events", publish_ours),
                    (
                        "baseline",
                        baseline_url,
                        "/events",
                        lambda n=count: httpx.post(f"{baseline_url}/publish/{n}", timeout=60),
                    ),
                ):
                    result = fan_out(url, path, count, publish)
                    rows.append({"clients": count, "server": name, **result})
                    print(rows[-1], flush=True)
        finally:
            for process in (ours, baseline):
                process.terminate()
                process.wait(timeout=60)
    return rows


def report(rows: list[dict], command: str, facts: dict, load_before: str, took: float) -> str:
    lines = [f"Command: `{command}`", "", "| Machine | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    lines += [f"| Load average (1 min), start → end | {load_before} → {load_average()} |"]
    lines += [f"| Duration | {took:.0f} s |", ""]
    lines += [
        "| Clients on one incident | broadcast: first / last receives after "
        "| /healthz p99 meanwhile | sse-starlette, queue per client: first / last "
        "| /healthz p99 meanwhile |",
        "|---|---|---|---|---|",
    ]
    by_count: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_count.setdefault(row["clients"], {})[row["server"]] = row
    for count, pair in by_count.items():
        ours, base = pair["ours"], pair["baseline"]
        lines.append(
            f"| {count:,} | {ours['first']:.2f} / {ours['last']:.2f} s | "
            f"{ours['healthz_p99']:.0f} ms (n={ours['healthz_n']}) | "
            f"{base['first']:.2f} / {base['last']:.2f} s | {base['healthz_p99']:.0f} ms "
            f"(n={base['healthz_n']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    isolate_environment()
    command = "python -m bench.live " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before, started = load_average(), time.monotonic()
    rows = measure(args.clients)
    text = report(rows, command, machine_facts(None), load_before, time.monotonic() - started)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
