"""Feed-polling benchmark: 500 gauge feeds served on 127.0.0.1, polled by the real poller.

    python -m bench.feeds [--feeds 500] [--entries 48] [--concurrency 4] [--repeat 3]
                          [--backend sqlite|postgresql|both] [--postgres-url URL] [--output F]

The feed server is a minimal ASGI app under uvicorn in its own process (so its CPU time is not
this process's): ``/f/<n>.xml`` is an RSS gauge feed of ``--entries`` readings with an ETag,
answering ``304`` to a matching ``If-None-Match``; ``POST /advance?every=k`` adds one reading to
every k-th feed. The sources (kind ``level``, unit cm, one ``above`` rule that never fires) are in
a fresh database: a SQLite file in a temporary directory, or the PostgreSQL database
``bench_feeds`` (created when missing, its schema dropped and recreated; never ``test``).

Rounds, each polling every feed once through ``FeedPoller.poll`` (fetch, parse, de-duplicate,
rules, health) from a thread pool of ``--concurrency`` threads (the scheduler's feed executor):
1. first poll: every reading is new and stored;
2. conditional, unchanged: the stored ETag makes every answer a 304, nothing is parsed;
3. unconditional, unchanged: the ETags are cleared first, so every feed is downloaded, parsed and
   found to hold nothing new: what the poller would cost without conditional GET;
4. conditional, 10 % changed: one feed in ten has one new reading.
Then as many ``rws`` sources (``POST /ONLINEWAARNEMINGENSERVICES/OphalenWaarnemingen`` on the
same server: ``--entries`` hourly measurements and a week of hourly forecast per location):
first poll, then unchanged polls (the measurements since the newest stored one, the same
forecast run), against a bare httpx POST of the same two requests + ``json.loads``.
Baselines in the same run, without the database: a bare unconditional fetch + ``feedparser``
parse of every feed, and a bare conditional fetch (304), on the same thread pool and clients.
Figures: polls per second (wall clock), CPU time per poll (this process, all threads; the
figure least disturbed by other load on the machine), and bytes downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from bench.common import (
    HOST,
    SPAWN,
    bench_settings,
    database_arguments,
    fresh_database,
    load_average,
    machine_facts,
    prepare,
    start_server,
)

# Its own database: the fan-out benchmark drops the schema of "bench".
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_feeds"


# --- the feed server (its own process) ---------------------------------------------------------


def _rss(n: int, entries: int, shift: int, now: datetime) -> bytes:
    items = []
    for k in range(entries):
        moment = now - timedelta(hours=k - shift)
        value = 900 + (n * 7 + k * 3 + shift) % 150
        items.append(
            f"<item><guid isPermaLink='false'>g{n}-{moment:%Y%m%d%H}</guid>"
            f"<title>Station {n}: {value} cm</title>"
            f"<link>http://{HOST}/station/{n}</link>"
            f"<description>Waterstand bij station {n}: {value} cm t.o.v. NAP</description>"
            f"<pubDate>{format_datetime(moment, usegmt=True)}</pubDate></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Station {n}</title><link>http://{HOST}/station/{n}</link>"
        f"<description>Waterstanden</description>{''.join(items)}</channel></rss>"
    ).encode()


def _server_app(count: int, entries: int):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    shifts = [0] * count
    bodies: dict[int, tuple[bytes, bytes]] = {}

    def build(n: int) -> None:
        body = _rss(n, entries, shifts[n], now)
        bodies[n] = (body, b'"' + hashlib.sha1(body).hexdigest()[:20].encode() + b'"')

    for n in range(count):
        build(n)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "POST" and path == RWS_PATH:
            status, body = _rws_answer(b"".join(chunks), entries, now)
            await _answer(send, status, body, [(b"content-type", b"application/json")])
            return
        if scope["method"] == "POST" and path == "/advance":
            every = int(
                dict(p.split("=") for p in scope["query_string"].decode().split("&"))["every"]
            )
            for n in range(0, count, every):
                shifts[n] += 1
                build(n)
            await _answer(send, 200, b"ok", [])
            return
        try:
            n = int(path.removeprefix("/f/").removesuffix(".xml"))
            body, etag = bodies[n]
        except (ValueError, KeyError):
            await _answer(send, 404, b"not found", [])
            return
        wanted = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if wanted == etag:
            await _answer(send, 304, b"", [(b"etag", etag)])
        else:
            await _answer(
                send, 200, body, [(b"etag", etag), (b"content-type", b"application/rss+xml")]
            )

    return app


RWS_PATH = "/ONLINEWAARNEMINGENSERVICES/OphalenWaarnemingen"
FORECAST_HOURS = 168  # a week of hourly forecast values per location


def _rws_answer(raw: bytes, entries: int, now: datetime) -> tuple[int, bytes]:
    """OphalenWaarnemingen for location ``s<n>``: ``entries`` hourly measurements up to now, or a
    week of hourly forecast values; the period filters them, as the real service does."""
    request = json.loads(raw)
    n = int(request["Locatie"]["Code"].removeprefix("s"))
    process = request["AquoPlusWaarnemingMetadata"]["AquoMetadata"].get("ProcesType", "meting")
    start = datetime.fromisoformat(request["Periode"]["Begindatumtijd"])
    end = datetime.fromisoformat(request["Periode"]["Einddatumtijd"])
    if process == "verwachting":
        moments = [now + timedelta(hours=k) for k in range(1, FORECAST_HOURS + 1)]
    else:
        moments = [now - timedelta(hours=k) for k in range(entries - 1, -1, -1)]
    offset = timezone(timedelta(hours=1))
    observations = [
        {
            "Meetwaarde": {"Waarde_Numeriek": float(900 + (n * 7 + i * 3) % 150)},
            "Tijdstip": moment.astimezone(offset).isoformat(timespec="milliseconds"),
            "WaarnemingMetadata": {"Statuswaarde": "Ongecontroleerd"},
        }
        for i, moment in enumerate(moments)
        if start <= moment <= end
    ]
    if not observations:
        return 204, b""
    answer = {
        "Succesvol": True,
        "WaarnemingenLijst": [
            {
                "Locatie": {"Code": f"s{n}", "Naam": f"Station {n}"},
                "AquoMetadata": {"ProcesType": process, "Eenheid": {"Code": "cm"}},
                "MetingenLijst": observations,
            }
        ],
    }
    return 200, json.dumps(answer).encode()


async def _answer(send, status: int, body: bytes, headers: list) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _server_main(ports, count: int, entries: int) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    options = {}
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        options = {"loop": "uvloop", "http": "httptools"}
    except ImportError:
        pass
    config = uvicorn.Config(
        _server_app(count, entries),
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=2048,
        timeout_keep_alive=120,
        **options,
    )
    ports.put(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])


class FeedServer:
    def __init__(self, count: int, entries: int):
        self._ports = SPAWN.Queue()
        self.process = SPAWN.Process(
            target=_server_main,
            args=(self._ports, count, entries),
            name="bench-feed-server",
            daemon=True,
        )

    def __enter__(self) -> FeedServer:
        self.url = start_server(self.process, self._ports, "/f/0.xml")
        return self

    def advance(self, every: int) -> None:
        import httpx

        httpx.post(f"{self.url}/advance?every={every}", timeout=30).raise_for_status()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(10)


# --- measurement -------------------------------------------------------------------------------


class Round:
    def __init__(
        self,
        name: str,
        polls: int,
        wall: float,
        cpu: float,
        downloaded: int,
        outcomes: dict[str, int],
    ):
        self.name, self.polls, self.wall, self.cpu = name, polls, wall, cpu
        self.downloaded, self.outcomes = downloaded, outcomes

    @property
    def per_second(self) -> float:
        return self.polls / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.polls * 1000


def timed(name: str, work, items: list, concurrency: int) -> Round:
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: None, range(concurrency)))  # threads exist before the clock
        cpu, wall = time.process_time(), time.perf_counter()
        results = list(pool.map(work, items))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    outcomes: dict[str, int] = {}
    downloaded = 0
    for outcome, size in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        downloaded += size
    return Round(name, len(items), wall, cpu, downloaded, outcomes)


def median_round(rounds: list[Round]) -> Round:
    """The median round by CPU time per poll (the wall clock of a loaded machine wobbles)."""
    return sorted(rounds, key=lambda r: r.cpu)[len(rounds) // 2]


def run(server: FeedServer, url: str, args) -> list[Round]:
    import feedparser
    from sqlalchemy import update as sql_update

    from broadcast.db import Database
    from broadcast.delivery.adapters import ChannelSet
    from broadcast.feeds import service
    from broadcast.feeds.models import FeedSource
    from broadcast.feeds.poll.fetch import Clients, fetch
    from broadcast.feeds.poll.polling import FeedPoller, limits_from

    # Parsed in this process (feed_parse_workers=0): CPU per poll is this process's CPU time,
    # which would not count the work of parser processes.
    settings = bench_settings(
        url, feed_min_interval_seconds=60, feed_allow_private_addresses=True, feed_parse_workers=0
    )
    db = Database(url)
    with db.session_scope() as session:
        ids = [
            service.create(
                session,
                url=f"{server.url}/f/{n}.xml",
                kind="level",
                interval_seconds=600,
                unit="cm",
                name=f"Station {n}",
                rules=[{"above": 5000, "reset_below": 4900}],
                min_interval=60,
                allow_private=True,
            ).id
            for n in range(args.feeds)
        ]
    poller = FeedPoller(db, ChannelSet(), settings)
    clients = Clients(limits_from(settings))
    urls = [f"{server.url}/f/{n}.xml" for n in range(args.feeds)]
    etags: dict[str, str | None] = {}

    def bare_unconditional(feed_url):
        fetched = fetch(clients.get(), feed_url, limits=clients.limits)
        etags[feed_url] = fetched.etag
        assert feedparser.parse(fetched.content).entries
        return "200+parse", len(fetched.content)

    def bare_conditional(feed_url):
        fetched = fetch(clients.get(), feed_url, limits=clients.limits, etag=etags[feed_url])
        return ("304" if fetched.not_modified else "200"), len(fetched.content)

    def poll(source_id):
        result = poller.poll(source_id)
        return result.outcome, result.downloaded

    def clear_etags():
        with db.session_scope() as session:
            session.exec(sql_update(FeedSource).values(etag=None, last_modified=None))

    # warm-up: connections, imports, caches (not measured)
    for feed_url in urls[:20]:
        bare_unconditional(feed_url)
    rounds = []
    rounds.append(
        median_round(
            [
                timed("bare fetch + parse (baseline)", bare_unconditional, urls, args.concurrency)
                for _ in range(args.repeat)
            ]
        )
    )
    args.body_kb = rounds[0].downloaded / args.feeds / 1000
    rounds.append(
        median_round(
            [
                timed("bare conditional fetch (304)", bare_conditional, urls, args.concurrency)
                for _ in range(args.repeat)
            ]
        )
    )
    rounds.append(timed("poll: first (all readings new)", poll, ids, args.concurrency))
    rounds.append(
        median_round(
            [
                timed("poll: conditional, unchanged (304)", poll, ids, args.concurrency)
                for _ in range(args.repeat)
            ]
        )
    )
    unconditional = []
    for _ in range(args.repeat):
        clear_etags()
        unconditional.append(timed("poll: unconditional, unchanged", poll, ids, args.concurrency))
    rounds.append(median_round(unconditional))
    changed = []
    for _ in range(args.repeat):
        server.advance(10)
        changed.append(timed("poll: conditional, 10 % changed", poll, ids, args.concurrency))
    rounds.append(median_round(changed))
    with db.session_scope() as session:
        readings = len(service.readings(session, ids[0], limit=100_000))
    assert readings == args.entries + args.repeat, readings  # feed 0 advanced every time
    rounds += _rws_rounds(server, db, poller, clients, args)
    poller.close()
    clients.close()
    db.dispose()
    return rounds


def _rws_rounds(server: FeedServer, db, poller, clients, args) -> list[Round]:
    """``rws`` sources (two POSTs a poll: measurements and the forecast) against a bare httpx
    POST of the same two requests + ``json.loads``, on the same threads and clients."""
    from broadcast.common import utcnow
    from broadcast.feeds import service
    from broadcast.feeds.parse import rws
    from broadcast.feeds.poll.polling import RWS_FORECAST_AHEAD, RWS_HISTORY

    with db.session_scope() as session:
        ids = [
            service.create(
                session,
                url=server.url,
                kind="rws",
                location=f"s{n}",
                interval_seconds=600,
                name=f"Station {n}",
                rules=[{"above": 5000}, {"forecast_peak_above": 5000}],
                min_interval=60,
                allow_private=True,
            ).id
            for n in range(args.feeds)
        ]

    def bare(n):
        now = utcnow()
        size = 0
        for process, start, end in (
            (rws.MEASUREMENT, now - RWS_HISTORY, now),
            (rws.FORECAST, now, now + RWS_FORECAST_AHEAD),
        ):
            body = rws.request_body(
                location=f"s{n}",
                quantity="WATHTE",
                reference="NAP",
                process=process,
                start=start,
                end=end,
            )
            response = clients.get().post(server.url + RWS_PATH, json=body)
            assert response.status_code == 200, response.status_code
            assert json.loads(response.content)["WaarnemingenLijst"]
            size += len(response.content)
        return "200+parse", size

    def poll(source_id):
        result = poller.poll(source_id)
        return result.outcome, result.downloaded

    locations = list(range(args.feeds))
    for n in locations[:20]:
        bare(n)  # warm-up
    rounds = [
        median_round(
            [
                timed(
                    "rws: bare 2 POSTs + JSON parse (baseline)", bare, locations, args.concurrency
                )
                for _ in range(args.repeat)
            ]
        ),
        timed("rws: poll, first (all new)", poll, ids, args.concurrency),
        median_round(
            [timed("rws: poll, unchanged", poll, ids, args.concurrency) for _ in range(args.repeat)]
        ),
    ]
    with db.session_scope() as session:
        readings = len(service.readings(session, ids[0], limit=100_000))
    assert 0 < readings <= args.entries, readings
    return rounds


NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def report(results: dict[str, list[Round]], facts: dict[str, str], args, command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| Machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        f"{args.feeds} feeds of {args.entries} entries ({args.body_kb:.1f} kB each), "
        f"{args.concurrency} polling threads; repeated rounds: the median of {args.repeat} by "
        "CPU time.",
        "",
        "| Backend | Round | polls/s | CPU ms/poll | downloaded | outcomes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for backend, rounds in results.items():
        for r in rounds:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
            lines.append(
                f"| {NAMES[backend]} | {r.name} | {r.per_second:,.0f} | {r.cpu_ms:.2f} "
                f"| {r.downloaded / 1e6:.2f} MB | {outcomes} |"
            )
    lines.append("")
    for backend, rounds in results.items():
        by_name = {r.name: r for r in rounds}
        conditional = by_name["poll: conditional, unchanged (304)"]
        full = by_name["poll: unconditional, unchanged"]
        base = by_name["bare fetch + parse (baseline)"]
        lines.append(
            f"{NAMES[backend]}: conditional GET saves "
            f"{1 - conditional.cpu_ms / full.cpu_ms:.0%} of the CPU time of an unchanged poll "
            f"({full.cpu_ms:.2f} → {conditional.cpu_ms:.2f} ms), downloads "
            f"{conditional.downloaded / 1e6:.2f} instead of {full.downloaded / 1e6:.2f} MB per "
            f"round and polls {conditional.per_second / full.per_second:.1f}× as many feeds per "
            f"second; a full poll that finds nothing new costs {full.cpu_ms / base.cpu_ms:.2f}× "
            f"the CPU of the bare fetch + parse ({base.cpu_ms:.2f} ms)."
        )
        rws_base = by_name["rws: bare 2 POSTs + JSON parse (baseline)"]
        rws_same = by_name["rws: poll, unchanged"]
        lines.append(
            f"{NAMES[backend]}: an rws poll that finds nothing new costs "
            f"{rws_same.cpu_ms / rws_base.cpu_ms:.2f}× the CPU of its two bare POSTs + JSON parse "
            f"({rws_same.cpu_ms:.2f} vs {rws_base.cpu_ms:.2f} ms) at "
            f"{rws_same.per_second / rws_base.per_second:.2f}× their polls per second."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feeds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--entries", type=int, default=48, help="readings per feed")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="polling threads (the default feed_concurrency)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    database_arguments(parser)
    args = parser.parse_args(argv)
    backends, command = prepare(args, "bench.feeds", argv)
    started, load_at_start = time.perf_counter(), load_average()
    results: dict[str, list[Round]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp,
        FeedServer(args.feeds, args.entries) as server,
    ):
        for backend in backends:
            print(f"[{backend}] polling", file=sys.stderr, flush=True)
            url = fresh_database(backend, Path(tmp), "feeds", args.postgres_url)
            results[backend] = run(server, url, args)
    facts = machine_facts(args.postgres_url if "postgresql" in backends else None)
    facts["Load average (1 min), start → end"] = f"{load_at_start} → {load_average()}"
    facts["Duration"] = f"{time.perf_counter() - started:.0f} s"
    text = report(results, facts, args, command.strip())
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
