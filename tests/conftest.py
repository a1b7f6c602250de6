"""Shared fixtures: the same suite on SQLite and on the local PostgreSQL server.

Tests that need a database take ``settings`` (or ``app``/``client``); they run once per backend.
PostgreSQL is skipped with a reason when it is not reachable, unless BROADCAST_REQUIRE_POSTGRES=1
(CI), where that is an error.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from phonenumbers import Leniency, PhoneNumberMatcher
from sqlalchemy import create_engine, inspect, text

from broadcast import logs
from broadcast.db import Database
from broadcast.delivery.adapters import ChannelSet
from broadcast.migrate import upgrade
from broadcast.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_URL = os.environ.get(
    "BROADCAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WEBHOOK_SECRET = "test-webhook-secret"
_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer setting leaks into a test; the default TOML file is not read."""
    for name in list(os.environ):
        if name.startswith("BROADCAST_") and name not in (
            "BROADCAST_TEST_POSTGRES_URL",
            "BROADCAST_REQUIRE_POSTGRES",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BROADCAST_CONFIG", str(ROOT / "tests" / "no-such-config.toml"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "logs_personal_data: the test logs personal data on purpose (to redact it)"
    )


LEAKS = [
    ("a Twilio account SID", re.compile(r"\bAC[0-9a-fA-F]{32}\b")),
    ("an e-mail address", re.compile(r"[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")),
    ("an API token", re.compile(r"\bbc_[A-Za-z0-9_\-]{20,}")),
    ("a bot token", re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}")),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+(?!\[token\])[^\s\"']{8,}")),
    (
        "a key or token",
        re.compile(
            r"(?i)\b(?:key|token|secret|password)[\"']?\s*[:=]\s*[\"']?(?!\[token\])[^\s\"'&,;]{8,}"
        ),
    ),
]


def personal_data_in(line: str) -> str | None:
    """What a formatted log line gives away, if anything."""
    for what, pattern in LEAKS:
        if pattern.search(line):
            return what
    if sum(c.isdigit() for c in line) >= 7 and next(
        iter(PhoneNumberMatcher(line, "NL", leniency=Leniency.VALID)), None
    ):
        return "a phone number"
    return None


class LogCheck(logging.Handler):
    """Every record the product would write (its own loggers from INFO, other libraries from
    WARNING), through both of its formatters, looked at for personal data and secrets."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.addFilter(logs.OwnOrWarning())
        self.formatters = (logs.JsonFormatter(), logs.text_formatter())
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        for formatter in self.formatters:
            line = formatter.format(record)
            if what := personal_data_in(line):
                self.leaks.append(f"{what} in {record.name}: {line}")
                return


@pytest.fixture(autouse=True)
def _no_personal_data_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """The whole suite doubles as a check of the logs: a test fails when anything it made the
    product log holds a phone number, an e-mail address, an account SID or a token."""
    if request.node.get_closest_marker("logs_personal_data"):
        yield
        return
    root, check = logging.getLogger(), LogCheck()
    own = [logging.getLogger(name) for name in logs.OWN]
    levels = [logger.level for logger in own]
    # A test that configures logging (an app, the CLI) points a handler at its own stream, which
    # is closed afterwards: the next test starts with the handlers of before.
    handlers, root_level = list(root.handlers), root.level
    root.addHandler(check)
    for logger in own:  # what ``broadcast serve`` logs by default
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, root_level
        for logger, level in zip(own, levels, strict=True):
            logger.setLevel(level)
    if check.leaks:
        pytest.fail("personal data in the logs:\n" + "\n".join(check.leaks[:10]), pytrace=False)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection to an address outside this machine."""
    original = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOOPBACK):
            raise RuntimeError(f"test tried to reach {host}: only loopback is allowed")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_schema() -> Iterator[str | None]:
    """A database of this test session's own (so parallel runs never meet), migrated once."""
    if not _postgres_available():
        if os.environ.get("BROADCAST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_URL}")
        yield None
        return
    name = f"broadcast_test_{os.getpid()}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        if tables:
            connection.execute(
                text(
                    "TRUNCATE {} RESTART IDENTITY CASCADE".format(
                        ", ".join(f'"{t}"' for t in tables)
                    )
                )
            )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "broadcast.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("_postgres_schema")
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    _truncate_postgres(url)
    yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        media_dir=tmp_path / "media",
        public_url="http://127.0.0.1:8000",
        areas_file=ROOT / "config" / "areas.toml",
        log_json=False,
        retry_base_seconds=0.05,
        retry_max_seconds=1.0,
        safety_poll_seconds=0.5,
        feed_allow_private_addresses=True,  # the feed stand-ins listen on 127.0.0.1
        signup_secret="test-signup-key",
        # the test receiver listens on 127.0.0.1
        channels={"webhook": {"secret": WEBHOOK_SECRET, "allow_private_addresses": True}},
    )


@pytest.fixture
def receiver():
    """A partner system on 127.0.0.1 that records our signed webhook POSTs."""
    from tests.fakes.receiver import receiver_app
    from tests.fakes.server import FakeServer

    app = receiver_app(WEBHOOK_SECRET)
    with FakeServer(app) as server:
        server.state = app.state.receiver
        yield server


@pytest.fixture
def feed_server():
    """A stand-in for water-level and warning feeds on 127.0.0.1 (tests/fakes/feeds.py)."""
    from tests.fakes.feeds import FeedServer

    with FeedServer() as server:
        yield server


@pytest.fixture
def twilio():
    """The Twilio stand-in on 127.0.0.1."""
    from tests.fakes.twilio import FakeTwilio

    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def live(app_factory, twilio):
    """``live(**settings)``: the app on a real port with the SMS and WhatsApp channels pointed
    at the Twilio stand-in, whose signed status callbacks reach it."""
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel, WhatsAppChannel
    from channels.webhook import WebhookChannel
    from tests.support import LiveApp, sms_config

    twilio.state.callback_delay = 0.3  # as real ones: a callback before the recorder is lost

    def start(**overrides):
        def build(public_url: str):
            return app_factory(
                public_url=public_url,
                channel_classes=[PlatformChannel, WebhookChannel, SmsChannel, WhatsAppChannel],
                channels={
                    "webhook": {"secret": WEBHOOK_SECRET},
                    "sms": sms_config(twilio),
                    "whatsapp": sms_config(twilio),
                },
                **overrides,
            )

        app = LiveApp(build).__enter__()
        started.append(app)
        return app

    started: list = []
    yield start
    for app in started:
        app.__exit__(None, None, None)


@pytest.fixture
def app_factory(settings: Settings):
    """Build the application with explicitly named adapters (tests never scan plugins)."""
    from broadcast.app import create_app
    from channels.platform import PlatformChannel
    from channels.webhook import WebhookChannel

    def build(**overrides):
        channel_classes = overrides.pop("channel_classes", [PlatformChannel, WebhookChannel])
        dispatch = overrides.pop("dispatch", True)
        return create_app(
            settings.model_copy(update=overrides),
            dispatch=dispatch,
            channel_classes=channel_classes,
        )

    return build


@pytest.fixture
def client(app_factory):
    from fastapi.testclient import TestClient

    with TestClient(app_factory()) as test_client:
        yield test_client


_REAL_SLEEP = asyncio.sleep


@dataclass
class VirtualClock:
    """An injected clock for the pacer. ``asyncio.sleep`` waits on this clock instead of taking
    time: whenever nothing else can run, the clock jumps to the earliest sleeper's wake-up and
    wakes it, so concurrent sleeps overlap as they would in real time, only instantly."""

    time: float = 100.0
    slept: list[float] = field(default_factory=list)
    _timers: list[tuple[float, int, asyncio.Future]] = field(default_factory=list, repr=False)
    _order: itertools.count = field(default_factory=itertools.count, repr=False)
    _driver: asyncio.Task | None = field(default=None, repr=False)

    def __call__(self) -> float:
        return self.time

    def stall(self, seconds: float) -> None:
        """The event loop is blocked for ``seconds``: time passes and nothing runs."""
        self.time += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        loop = asyncio.get_running_loop()
        wake = loop.create_future()
        heapq.heappush(self._timers, (self.time + max(0.0, seconds), next(self._order), wake))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await wake

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._timers:
            await _REAL_SLEEP(0)
            if getattr(loop, "_ready", None):  # something can still run at this moment
                continue
            wake_at, _, wake = heapq.heappop(self._timers)
            self.time = max(self.time, wake_at)
            if not wake.done():
                wake.set_result(None)


@pytest.fixture
def virtual_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """``Pacer(limits, clock=virtual_clock)``: pacing asserted on the clock, not on time. Every
    ``asyncio.sleep`` of the test (the pacer's and the test's own) runs on this clock."""
    clock = VirtualClock()
    monkeypatch.setattr("broadcast.delivery.pacing.asyncio.sleep", clock.sleep)
    return clock


@dataclass
class Store:
    db: Database
    channels: ChannelSet
    settings: Settings


@pytest.fixture
def store(app_factory) -> Iterator[Store]:
    """The application started without a dispatcher: its database (areas loaded) and channels
    (platform and webhook), for calling service functions directly."""
    from fastapi.testclient import TestClient

    with TestClient(app_factory(dispatch=False, public_url="https://crisis.example.nl/")) as client:
        state = client.app.state
        yield Store(state.db, state.channels, state.settings)
