"""A stand-in in a child process of its own, for measurements of pace.

In the test process a stand-in shares the interpreter lock with the service it measures: when
the service is busy, requests wait in the socket and the stand-in then reads a backlog at once,
so its sliding window sees a burst that no real provider would (measured: 23-38 refusals per
10,000 Telegram messages in-process on a busy machine). A provider runs elsewhere; so does this.

    with StandInProcess("telegram") as fake:      # or "twilio", "mastodon"
        fake.url, fake.info["token"]               # and fake.token for Telegram
        fake.log()                                 # [(time, path, status), ...] of every answer
        fake.refusals(), fake.recipients()         # its 429s; whom it accepted a message for

The child runs the stand-in with its default limits and records when it answered what. It
does without the cycle collector and asks for a higher scheduling priority: both keep it from
stalling, which a real provider's clock would not do either (on a busy shared machine, 1-3
refusals per 10,000 remained without them).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOG_PATH = "/_stand_in/log"
REFUSALS_PATH = "/_stand_in/refusals"
RECIPIENTS_PATH = "/_stand_in/recipients"


class StandInProcess:
    def __init__(self, kind: str):
        if kind not in ("telegram", "twilio", "mastodon"):
            raise ValueError(f"no stand-in named {kind!r}")
        self.kind = kind
        self.info: dict[str, Any] = {}
        self.url = self.token = ""
        self._child: subprocess.Popen | None = None

    def __enter__(self) -> StandInProcess:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.process", self.kind],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._child.stdout is not None
        self.info = json.loads(self._child.stdout.readline())
        self.url, self.token = self.info["url"], self.info.get("token", "")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._child is not None:
            assert self._child.stdin is not None
            self._child.stdin.close()  # the child's signal to stop
            self._child.wait(timeout=60)

    def log(self) -> list[tuple[float, str, int]]:
        answer = httpx.get(self.url + LOG_PATH, trust_env=False, timeout=30)
        return [(at, path, status) for at, path, status in answer.json()]

    def refusals(self) -> list[dict[str, Any]]:
        return httpx.get(self.url + REFUSALS_PATH, trust_env=False, timeout=30).json()

    def recipients(self) -> list[str]:
        """Who each accepted message went to (a number, a chat id), once per message; the
        Telegram and Twilio stand-ins only."""
        return httpx.get(self.url + RECIPIENTS_PATH, trust_env=False, timeout=30).json()


def _serve(kind: str) -> None:
    # A collection of the stand-in's growing heap would stall it and make it read a backlog of
    # requests at once: a burst at the provider that no sender caused. It lives for one
    # measurement, so it does without the cycle collector.
    gc.disable()
    # Nor should the machine's other work (tests, builds) stall it for tens of milliseconds:
    # a provider's clock does not stop when ours is busy. A higher priority where allowed.
    with contextlib.suppress(OSError):
        os.nice(-10)
    from starlette.responses import JSONResponse

    from tests.fakes.server import FakeServer

    if kind == "telegram":
        from tests.fakes.telegram import TelegramState, create_app

        state: Any = TelegramState()
        info = {"token": state.token}
    elif kind == "twilio":
        from tests.fakes.twilio import TwilioState, create_app

        state = TwilioState()
        info = {"account_sid": state.account_sid, "auth_token": state.auth_token}
    else:
        from tests.fakes.mastodon import MastodonState, create_app

        state = MastodonState()
        info = {"token": state.access_token}
    inner, log = create_app(state), []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        if scope["path"] == LOG_PATH:
            return await JSONResponse(log)(scope, receive, send)
        if scope["path"] == REFUSALS_PATH:  # the stand-in's own record of its 429s
            refused = getattr(state, "rate_limited", [])
            return await JSONResponse(refused)(scope, receive, send)
        if scope["path"] == RECIPIENTS_PATH and kind in ("telegram", "twilio"):
            return await JSONResponse(_recipients(kind, state))(scope, receive, send)

        async def recorded(message):
            if message["type"] == "http.response.start":
                log.append((time.time(), scope["path"], message["status"]))
            await send(message)

        await inner(scope, receive, recorded)

    with FakeServer(app) as server:
        print(json.dumps(info | {"url": server.url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def _recipients(kind: str, state: Any) -> list[str]:
    if kind == "telegram":
        return [str(message.chat_id) for message in state.sent]
    return [message["to"] for message in state.messages]


if __name__ == "__main__":
    _serve(sys.argv[1])
