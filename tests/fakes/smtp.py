"""An SMTP server in-process (``aiosmtpd``, real SMTP on 127.0.0.1) that behaves like a mail
provider's submission server: it accepts, keeps what it received, and can refuse as they do.

    with FakeSmtp() as smtp:
        ...  # smtp.url is smtp://127.0.0.1:<port>; smtp.state.messages are the mails received

Refusals (``smtp.state``): ``gone`` mailboxes get 550 at RCPT; ``busy`` mailboxes 450 at RCPT
(greylisting) for their first ``busy[address]`` attempts; ``server_busy`` > 0 answers 421 with a
stated wait at MAIL that many times (4xx, then ok); ``reject_data`` answers 554 to DATA.
``stop()`` then ``start()`` again: connection refused in between (a server that is down).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
SERVER_WAIT = 30  # the seconds a 421 asks for


@dataclass
class SmtpState:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    busy: dict[str, int] = field(default_factory=dict)
    server_busy: int = 0
    reject_data: bool = False
    sessions: int = 0  # connections that said EHLO/HELO
    lock: threading.Lock = field(default_factory=threading.Lock)

    def last(self) -> EmailMessage:
        return self.messages[-1]


class _Handler:
    def __init__(self, state: SmtpState):
        self.state = state

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname, responses
    ):
        with self.state.lock:
            self.state.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope: Envelope, address: str, options):
        with self.state.lock:
            if self.state.server_busy > 0:
                self.state.server_busy -= 1
                return f"421 4.7.0 Too many messages, try again in {SERVER_WAIT} seconds"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope: Envelope, address: str, options):
        with self.state.lock:
            if address.lower() in self.state.gone:
                return "550 5.1.1 The email account that you tried to reach does not exist"
            if self.state.busy.get(address.lower(), 0) > 0:
                self.state.busy[address.lower()] -= 1
                return "450 4.2.1 Mailbox busy, greylisted: try again in 120 seconds"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope: Envelope):
        if self.state.reject_data:
            return "554 5.7.1 Message rejected as spam"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self.state.lock:
            self.state.messages.append(message)
            self.state.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued"


class FakeSmtp:
    """aiosmtpd's ``Controller`` (its own thread and event loop) on a fixed free port."""

    def __init__(self) -> None:
        self.state = SmtpState()
        self.port = _free_port()
        self.url = f"smtp://{HOST}:{self.port}"
        self._controller: Controller | None = None

    def start(self) -> Self:
        self._controller = Controller(
            _Handler(self.state), hostname=HOST, port=self.port, ready_timeout=60.0
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class FixedKeySigner:
    """A ``channels.base.LinkSigner`` with a fixed key, as the core's (``broadcast.keys``)."""

    def __init__(self, key: bytes = b"test-link-key"):
        from broadcast.keys import LinkSigner

        self._signer = LinkSigner(_no_session, None)
        self._signer._key = key

    def sign(self, purpose: str, value: str) -> str:
        return self._signer.sign(purpose, value)

    def unsign(self, purpose: str, token: str) -> str | None:
        return self._signer.unsign(purpose, token)


def _no_session() -> Any:
    raise AssertionError("the test signer has its key")
