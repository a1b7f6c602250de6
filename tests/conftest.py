"""Shared fixtures: the same suite on SQLite and on the local PostgreSQL server.

Tests that need a database take ``settings`` (or ``app``/``client``); they run once per backend.
PostgreSQL is skipped with a reason when it is not reachable, unless BROADCAST_REQUIRE_POSTGRES=1
(CI), where that is an error.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

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
