"""Short builder functions for tests (no factory framework)."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import httpx

from broadcast.auth.models import Role
from broadcast.auth.service import add_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, driven by Playwright
# Every browser wait (navigation, locator, ``expect``) is bounded by this: a met condition returns
# at once, and Playwright's own defaults (30 s, 5 s for ``expect``) were too short for Swagger UI
# on a machine at a load average of 10.
BROWSER_TIMEOUT_MS = 90_000


@contextmanager
def chromium():
    """Headless Chromium for one test or module; pages from ``new_page`` wait generously."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], timeout=BROWSER_TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


# Read when the suite is collected: the tests themselves run without BROADCAST_* variables.
SCREENSHOTS = os.environ.get("BROADCAST_SCREENSHOTS")


def screenshot(page, name: str) -> None:
    """Saved as ``<name>.png`` in ``BROADCAST_SCREENSHOTS`` (docs/screenshots for the README)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


def new_page(browser, **context_options):
    """A page in a context of its own (cookies, viewport), with the generous time-outs."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    context.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
    return context.new_page()


def token_for(app, role: str, name: str | None = None, display_name: str = "") -> str:
    with app.state.db.session_scope() as session:
        _, token = add_user(
            session,
            name=name or f"{role}-user",
            role=Role(role),
            display_name=display_name,
            password="correct horse",
        )
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(condition: Callable[[], object], timeout: float = 60.0, interval: float = 0.02):
    """Poll until ``condition()`` is truthy; fail with a clear message otherwise. The time-out
    only bounds the wait (a met condition returns at once), so it is generous: a machine at a
    load average of 8 made 10 s too short for a live SMS round trip with its callbacks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def console_log_in(client, name: str, password: str = "correct horse", **fields):
    """Sign in on the console's login form as a browser does: the form's token, our origin."""
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
    return client.post(
        "/console/login",
        data={"username": name, "password": password, "next": "/console", "csrf": csrf} | fields,
        headers={"Origin": str(client.base_url)},
        follow_redirects=False,
    )


def console_headers(client) -> dict[str, str]:
    """What a signed-in page's script sends with a state-changing request."""
    page = client.get("/console")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]
    return {"Origin": str(client.base_url), "X-CSRF-Token": csrf}


def new_incident(client, token: str, **fields) -> dict:
    body = {"title": "Hoogwater Maas", "severity": "warning", "areas": ["mook"]} | fields
    response = client.post("/api/v1/incidents", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


def post_update(client, token: str, incident_id: int, **fields) -> dict:
    body = {"body": "Het water stijgt."} | fields
    response = client.post(
        f"/api/v1/incidents/{incident_id}/updates", json=body, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return response.json()


class ServiceProcess:
    """``broadcast serve`` in a child process, as an operator runs it (and can kill it)."""

    startup_seconds = 120.0  # bounds the wait until /healthz answers (a loaded machine)

    def __init__(self, env: dict[str, str], cwd, *args: str):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.cwd, self.args, self.process = env, cwd, args, None

    def start(self) -> ServiceProcess:
        import os
        import subprocess
        import sys

        import httpx

        command = [
            sys.executable,
            "-m",
            "broadcast.cli",
            "serve",
            "--port",
            str(self.port),
            *self.args,
        ]
        self.log_path = f"{self.cwd}/serve-{self.port}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=os.environ | self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

        def healthy():
            try:
                return httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200
            except httpx.HTTPError:
                assert self.process.poll() is None, "broadcast serve exited"
                return False

        wait_for(healthy, timeout=self.startup_seconds, interval=0.1)
        return self

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash or a power cut."""
        self.process.kill()
        self.process.wait()
        self.log.close()
        self.check_log()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # never left running into the next test
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.check_log()

    def check_log(self) -> None:
        """What the service wrote holds no personal data (tests/conftest.py checks in-process)."""
        from tests.conftest import personal_data_in

        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            leaks = [f"{what}: {line}" for line in log if (what := personal_data_in(line))]
        assert not leaks, "personal data in the service's log:\n" + "".join(leaks[:10])


# --- processes sharing one database --------------------------------------------------------------


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``broadcast serve``/``worker`` child process on ``database_url``."""
    from tests.conftest import ROOT, WEBHOOK_SECRET

    return {
        "BROADCAST_DATABASE_URL": database_url,
        "BROADCAST_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BROADCAST_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on 127.0.0.1
        "BROADCAST_AREAS_FILE": str(ROOT / "config" / "areas.toml"),
        "BROADCAST_LOG_JSON": "false",
        "BROADCAST_LEASE_SECONDS": "3",
        "BROADCAST_SAFETY_POLL_SECONDS": "0.5",
        "BROADCAST_CHANNELS_ENABLED": "platform,webhook",
        "PYTHONPATH": str(ROOT),
    } | extra


def seed(database_url: str, receiver_url: str, subscribers: int) -> str:
    """A migrated database with an officer (its token is returned) and ``subscribers`` webhook
    subscribers at the receiver, inserted in one statement."""
    from sqlalchemy import insert

    from broadcast.common import utcnow
    from broadcast.db import Database
    from broadcast.migrate import upgrade
    from broadcast.subscribers.models import Subscriber

    db = Database(database_url)
    upgrade(db.engine)
    with db.session_scope() as session:
        _, token = add_user(session, name="officer", role=Role.officer)
        if subscribers:
            session.execute(
                insert(Subscriber.__table__),
                [
                    {
                        "channel": "webhook",
                        "address": f"{receiver_url}/r/{n}",
                        "language": "nl",
                        "min_severity": "info",
                        "state": "active",
                        "created_at": utcnow(),
                    }
                    for n in range(subscribers)
                ],
            )
    db.dispose()
    return token


# --- the console's forms ------------------------------------------------------------------------

PASSWORD = "correct horse"  # what token_for gives every user
ORIGIN = {"Origin": "http://testserver"}


def log_in(client, name: str, password: str = PASSWORD):
    return console_log_in(client, name, password)


def csrf_of(client, path: str = "/console") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]


def post_form(client, path: str, data: dict, *, csrf: str | None = None, headers=None):
    fields = data | ({"csrf": csrf} if csrf is not None else {})
    return client.post(path, data=fields, headers=headers or ORIGIN, follow_redirects=False)


# --- Twilio: SMS and WhatsApp -------------------------------------------------------------------

NUMBER = "+31612345678"
SENDER = "+3197010000000"
PROXIED = "https://crisis.gemeente.example"  # the public URL; Twilio signs this one


def sms_config(fake, **changes) -> dict:
    """The sms/whatsapp channel settings that point at the Twilio stand-in ``fake``."""
    values = {"account_sid": fake.account_sid, "auth_token": fake.auth_token, "from": SENDER}
    return values | {"api_url": fake.url, "whatsapp_from": SENDER} | changes


def sms_channel(fake, cls=None, public_url: str = PROXIED, **changes):
    from channels.base import ChannelContext
    from channels.sms import SmsChannel

    cls = cls or SmsChannel
    settings = cls.Settings.model_validate(sms_config(fake, **changes))
    return cls(settings, ChannelContext(public_url=public_url))


def post_signed(client, path: str, params: dict, token: str, signed_url: str | None = None):
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(token).compute_signature(signed_url or PROXIED + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def reply(client, twilio, body: str, sender: str = NUMBER, path: str = "/webhooks/twilio/sms"):
    """A resident's SMS (or WhatsApp message) as Twilio posts it, signed for PROXIED."""
    from tests.fakes.twilio import signed_inbound_sms

    params, _ = signed_inbound_sms(PROXIED + path, sender, body, twilio.auth_token)
    return post_signed(client, path, params, twilio.auth_token)


def code_sent_to(twilio, number: str, count: int = 1) -> str:
    """The sign-up code in the ``count``-th SMS to ``number``, once it was sent."""
    wait_for(lambda: len(twilio.state.bodies_to(number)) >= count)
    return re.search(r"\b(\d{6})\b", twilio.state.bodies_to(number)[count - 1]).group(1)


class LiveApp:
    """The app on a real port with its lifespan (dispatcher included). Its public URL is that
    port, so the fake's signed status callbacks reach it and are checked for real."""

    def __init__(self, build):
        import socket
        import threading

        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.app = build(self.url)
        config = uvicorn.Config(self.app, lifespan="on", log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveApp:
        import httpx

        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive())
        assert self.server.started, "the app did not start"
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=10)
        self.officer = token_for(self.app, "officer")
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()


def subscribe_number(app: LiveApp, address: str, areas: list[str], channel: str = "sms") -> int:
    body = {"channel": channel, "address": address, "areas": areas}
    response = app.http.post("/api/v1/subscribers", json=body, headers=auth(app.officer))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def counts(app: LiveApp, update: dict) -> dict:
    path = f"/api/v1/updates/{update['id']}/deliveries"
    return app.http.get(path, headers=auth(app.officer)).json()


# --- Telegram -----------------------------------------------------------------------------------

TELEGRAM_CHANNEL = "@gemeente"
TELEGRAM_SECRET = "s3cret"  # the webhook's X-Telegram-Bot-Api-Secret-Token
RESIDENT_CHAT = "4242"
TELEGRAM_START = "update_message_start_command_tgdocs.json"  # /start from chat 1111111
FIRST_CHAT = 5_000_000
_telegram_update_ids = itertools.count(500_000)


def update_view(body: str = "Het water stijgt.", **fields):
    """One published update as an adapter sees it."""
    from channels.base import UpdateView

    values = {
        "id": 7,
        "kind": "update",
        "severity": "warning",
        "body": {"nl": body},
        "url": "http://127.0.0.1:8000/u/7",
        "incident_title": "Hoogwater Maas",
    } | fields
    return UpdateView(**values)


def telegram_channel(fake, **settings):
    """The Telegram adapter pointed at the Bot API stand-in ``fake``."""
    from channels.base import ChannelContext
    from channels.telegram import TelegramChannel, TelegramSettings

    values = {"bot_token": fake.token, "api_url": fake.url, "channel_id": TELEGRAM_CHANNEL}
    values |= settings
    return TelegramChannel(TelegramSettings(**values), ChannelContext("http://127.0.0.1:8000"))


def telegram_settings(fake, **values) -> dict:
    from tests.conftest import WEBHOOK_SECRET

    settings = {"bot_token": fake.token, "api_url": fake.url, "channel_id": TELEGRAM_CHANNEL}
    return {"webhook": {"secret": WEBHOOK_SECRET}, "telegram": settings | values}


def build_client(app_factory, fake, **values):
    """A TestClient of the app with the platform, webhook and Telegram channels."""
    from fastapi.testclient import TestClient

    from channels.platform import PlatformChannel
    from channels.telegram import TelegramChannel
    from channels.webhook import WebhookChannel

    return TestClient(
        app_factory(
            channel_classes=[PlatformChannel, WebhookChannel, TelegramChannel],
            channels=telegram_settings(fake, **({"webhook_secret": TELEGRAM_SECRET} | values)),
        )
    )


def subscribe_chat(
    client, officer: str, chat_id: int, areas: list[str], language: str = "nl"
) -> int:
    body = {"channel": "telegram", "address": str(chat_id), "areas": areas, "language": language}
    response = client.post("/api/v1/subscribers", json=body, headers=auth(officer))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def telegram_deliveries(client, update_id: int | None = None) -> list:
    from sqlmodel import select

    from broadcast.delivery.models import Delivery

    query = select(Delivery).where(Delivery.channel == "telegram")
    if update_id is not None:
        query = query.where(Delivery.update_id == update_id)
    with client.app.state.db.session_scope() as session:
        return list(session.exec(query.order_by(Delivery.id)))


def settled(client, update_id: int, count: int) -> list:
    """The update's ``count`` Telegram deliveries once all are final, else []."""
    rows = telegram_deliveries(client, update_id)
    done = [d for d in rows if d.state in ("delivered", "failed", "dead")]
    return rows if len(rows) == count and len(done) == count else []


def add_residents(client, count: int) -> None:
    """Telegram residents from FIRST_CHAT on, straight into the table (not one by one)."""
    from broadcast.common import utcnow
    from broadcast.subscribers.models import Subscriber, SubscriberState

    now = utcnow()
    with client.app.state.db.session_scope() as session:
        session.add_all(
            Subscriber(
                channel="telegram",
                address=str(FIRST_CHAT + n),
                state=SubscriberState.active,
                consent_at=now,
            )
            for n in range(count)
        )


def payload(name: str, text: str | None = None, **message) -> dict:
    """A recorded Bot API update with a fresh update_id (Telegram's are unique; repeats are
    ignored)."""
    from tests.conftest import FIXTURES

    data = copy.deepcopy(json.loads((FIXTURES / "telegram" / name).read_text()))
    data["update_id"] = next(_telegram_update_ids)
    if text is not None:
        data["message"]["text"] = text
    data.get("message", {}).update(message)
    return data


def deliver(client, data: dict, secret: str | None = TELEGRAM_SECRET):
    """Post a Bot API update to our webhook as Telegram does."""
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return client.post("/webhooks/telegram", json=data, headers=headers)


def said(fake, chat_id: int, count: int = 0) -> list[str]:
    """What the bot said to the chat, once it said at least ``count`` things (replies go out
    through the outbox, a moment after the webhook answered)."""
    if count:
        wait_for(lambda: len(fake.state.texts(chat_id)) >= count)
    return [text or "" for text in fake.state.texts(chat_id)]


# --- the reminder before a promised update is late -------------------------------------------


def remind_at(app, now, minutes: float = 10.0) -> list[int]:
    """Run the scheduler's reminder job of ``app`` as if it were ``now`` (an injected clock)."""
    from broadcast.scheduling import jobs

    runtime = jobs.Runtime(
        db=app.state.db,
        channels=app.state.channels,
        public_url=app.state.settings.public_url,
        promise_reminder_minutes=minutes,
    )
    return jobs.remind(runtime, now)


# --- ``broadcast`` commands as child processes ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CliProcess:
    """A ``broadcast …`` command (a compose service's, a worker) as a child process of the test:
    a free loopback port for ``--port``, its output in ``<cwd>/<name>.log``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path):
        assert command[0] == "broadcast"
        self.name, self.port = name, None
        argv = list(command[1:])
        if "--port" in argv:  # a free port on loopback instead of the container's 8000
            self.port = free_port()
            argv[argv.index("--port") + 1] = str(self.port)
        if "--host" in argv:
            argv[argv.index("--host") + 1] = "127.0.0.1"  # never beyond this machine
        self.url = f"http://127.0.0.1:{self.port}" if self.port else ""
        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broadcast.cli", *argv],
            cwd=cwd,
            env=os.environ | env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        assert self.running(), f"{self.name} exited:\n{self.log()[-3000:]}"
        if not self.url:
            return "worker running" in self.log()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: its connections close without a goodbye, like a crash."""
        self.process.kill()
        self.process.wait(60)

    def stop(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


# --- the outbox seen from the database, for tests of several processes ---------------------------


def add_subscribers(database_url: str, rows: list[tuple[str, str]]) -> None:
    """Active Dutch subscribers for the whole municipality: ``(channel, address)`` each."""
    from sqlalchemy import create_engine, insert

    from broadcast.common import utcnow
    from broadcast.subscribers.models import Subscriber

    now = utcnow()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            insert(Subscriber.__table__),
            [
                {
                    "channel": channel,
                    "address": address,
                    "language": "nl",
                    "min_severity": "info",
                    "state": "active",
                    "created_at": now,
                    "consent_at": now,
                }
                for channel, address in rows
            ],
        )
    engine.dispose()


def delivery_states(database_url: str, update_id: int) -> Counter:
    """How many of the update's deliveries are in each (channel, state)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT channel, state, count(*) FROM deliveries WHERE update_id = :u "
                "GROUP BY channel, state"
            ),
            {"u": update_id},
        ).all()
    engine.dispose()
    return Counter({(channel, state): n for channel, state, n in rows})
