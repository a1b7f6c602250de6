"""Public-site benchmark: the pages residents open when the siren sounds, against a trivial
FastAPI handler that returns the same bytes, measured in the same run.

    python -m bench.public [--seconds 5] [--connections 64] [--output FILE]

``broadcast demo`` seeds the Maas-flood scenario into a fresh SQLite file; ``broadcast serve`` (one
process, dispatcher and scheduler on, as an operator runs it) serves it. The baseline is a FastAPI
app under the same uvicorn defaults whose handlers return the bytes our server sent for each path
(captured once, uncompressed), with the same content type; for the conditional rounds it answers
``304`` when ``If-None-Match`` equals the ETag: the least a server can do. The load generator is a
keep-alive HTTP/1.1 client on asyncio and uvloop in its own process (``wrk`` is not installed
here), ``--connections`` connections for ``--seconds`` per round; ours and the baseline take turns,
``--repeats`` rounds each per path, and the median round of each is reported, so a busy machine
moves both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import HOST, ROOT, SPAWN, isolate_environment, load_average, machine_facts
from bench.common import percentile as pct

PATHS = ["/incidents/{slug}", "/", "/feed.atom", "/cap.atom", "/healthz"]
TARGET = 0.5  # ours at least half the trivial handler's rate


# --- the load generator ----------------------------------------------------------------------


async def _one_connection(port: int, request: bytes, until: float, latencies: list[float]):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            if status not in (200, 304):
                raise RuntimeError(f"status {status}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def _load_main(port: int, request: bytes, seconds: float, connections: int, results) -> None:
    import uvloop

    async def run() -> list[float]:
        latencies: list[float] = []
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_one_connection(port, request, until, latencies) for _ in range(connections))
        )
        return latencies

    results.put(uvloop.run(run()))


def load(url: str, path: str, *, seconds: float, connections: int, headers: dict) -> dict:
    """Requests per second and latency percentiles of ``connections`` keep-alive clients."""
    port = int(url.rsplit(":", 1)[1])
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    results = SPAWN.Queue()
    process = SPAWN.Process(
        target=_load_main, args=(port, request, seconds, connections, results), daemon=True
    )
    process.start()
    latencies = results.get(timeout=seconds + 120)
    process.join()
    return {
        "rate": len(latencies) / seconds,
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
    }


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def service_env(database_url: str) -> dict[str, str]:
    return os.environ | {
        "BROADCAST_DATABASE_URL": database_url,
        "BROADCAST_PUBLIC_URL": "http://127.0.0.1:8000",
        "BROADCAST_CONFIG": str(ROOT / "bench" / "no-such-config.toml"),
        "BROADCAST_LOG_JSON": "false",
        "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
    }


def start(command: list[str], env: dict, cwd: Path, probe: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(probe, timeout=1)
            return process
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{command} did not start; see {log}") from None
            time.sleep(0.1)


def start_broadcast(workdir: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    env = service_env(database_url)
    cli = [sys.executable, "-m", "broadcast.cli"]
    subprocess.run([*cli, "demo"], env=env, cwd=workdir, check=True, capture_output=True)
    port = free_port()
    url = f"http://{HOST}:{port}"
    server = start(
        [*cli, "serve", "--port", str(port)], env, workdir, f"{url}/healthz", workdir / "ours.log"
    )
    return server, url


BASELINE_APP = """
import json, sys, uvicorn
from fastapi import FastAPI, Request, Response
documents = json.load(open(sys.argv[1]))
app = FastAPI()
def route(path, body, media_type, etag):
    body = body.encode("latin-1")
    async def handler(request: Request):
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type=media_type, headers={"ETag": etag})
    app.add_api_route(path, handler)
for path, (body, media_type, etag) in documents.items():
    route(path, body, media_type, etag)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def start_baseline(workdir: Path, documents: dict) -> tuple[subprocess.Popen, str]:
    (workdir / "documents.json").write_text(json.dumps(documents))
    (workdir / "baseline.py").write_text(BASELINE_APP)
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "baseline.py", "documents.json", str(port)]
    server = start(command, os.environ, workdir, f"{url}/healthz", workdir / "baseline.log")
    return server, url


def capture(url: str, paths: list[str]) -> dict[str, tuple[str, str, str]]:
    """What our server sends for each path, uncompressed: body, content type, ETag."""
    documents = {}
    for path in paths:
        response = httpx.get(f"{url}{path}", headers={"Accept-Encoding": "identity"})
        response.raise_for_status()
        documents[path] = (
            response.content.decode("latin-1"),
            response.headers["content-type"],
            response.headers.get("etag", '"none"'),
        )
    return documents


# --- the run ----------------------------------------------------------------------------------


def alternate(servers: dict[str, str], path: str, headers: dict, args) -> dict[str, dict]:
    """``--repeats`` rounds per server, taking turns; the median round of each."""
    rounds: dict[str, list[dict]] = {name: [] for name in servers}
    for _ in range(args.repeats):
        for name, url in servers.items():
            rounds[name].append(
                load(url, path, seconds=args.seconds, connections=args.connections, headers=headers)
            )
    return {name: _median_round(found) for name, found in rounds.items()}


def _median_round(found: list[dict]) -> dict:
    return sorted(found, key=lambda measured: measured["rate"])[len(found) // 2]


def measure(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-public-") as tmp:
        workdir = Path(tmp)
        ours, ours_url = start_broadcast(workdir, f"sqlite:///{workdir}/broadcast.db")
        try:
            slug = re.search(r'href="/incidents/([^"?#]+)"', httpx.get(f"{ours_url}/").text)[1]
            paths = [p.format(slug=slug) for p in PATHS]
            documents = capture(ours_url, paths)
            baseline, baseline_url = start_baseline(workdir, documents)
            try:
                for path in paths:
                    rounds = [("plain", {})]
                    if path != "/healthz":
                        rounds.append(("If-None-Match", {"If-None-Match": documents[path][2]}))
                    for label, headers in rounds:
                        measured = alternate(
                            {"ours": ours_url, "baseline": baseline_url}, path, headers, args
                        )
                        rows.append({"path": path, "round": label, **measured})
                        print(row_text(rows[-1]), flush=True)
            finally:
                baseline.terminate()
                baseline.wait(timeout=30)
        finally:
            ours.terminate()
            ours.wait(timeout=30)
    return rows


def row_text(row: dict) -> str:
    ours, base = row["ours"], row["baseline"]
    share = ours["rate"] / base["rate"]
    verdict = "—" if row["path"] == "/healthz" else ("✅ met" if share >= TARGET else "❌ missed")
    path = re.sub(r"/incidents/.+", "/incidents/<slug>", row["path"])
    return (
        f"| `{path}` | {row['round']} | {ours['rate']:,.0f} req/s, p50 {ours['p50']:.1f} ms, "
        f"p99 {ours['p99']:.1f} ms | {base['rate']:,.0f} req/s, p50 {base['p50']:.1f} ms, "
        f"p99 {base['p99']:.1f} ms | {share:.0%} | {verdict} |"
    )


def report(rows: list[dict], command: str, facts: dict, load_before: str, took: float) -> str:
    lines = [f"Command: `{command}`", "", "| Machine | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    lines += [f"| Load average (1 min), start → end | {load_before} → {load_average()} |"]
    lines += [f"| Duration | {took:.0f} s |", ""]
    lines += [
        "| Path | Request | broadcast | trivial FastAPI handler, same bytes | share | ≥ 50 % |",
        "|---|---|---|---|---|---|",
    ]
    lines += [row_text(row) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per server, alternating")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    isolate_environment()
    command = "python -m bench.public " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before, started = load_average(), time.monotonic()
    rows = measure(args)
    text = report(rows, command, machine_facts(None), load_before, time.monotonic() - started)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
