"""Logs without personal data: redaction of every part of a line, quiet third-party libraries,
and the suite-wide check in tests/conftest.py that looks at every line a test makes us log."""

from __future__ import annotations

import io
import json
import logging

import pytest

from broadcast import logs
from tests.conftest import LogCheck, personal_data_in

SID = "AC" + "0123456789abcdef" * 2
PERSONAL = [
    "bel 06 1234 5678 voor zandzakken",
    "sms naar 0031612345678 mislukt",
    "sms naar +31 6 12345678 mislukt",
    "sms naar 06-12345678 mislukt",
    "sms to +44 7911 123456 failed",
    f"POST /2010-04-01/Accounts/{SID}/Messages.json",
    "mail voor jan.de.vries@example.nl bounced",
    "Authorization: Bearer bc_abcdefghijklmnopqrstuvwxyz0123",
    "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0 refused",
    "token=s3cr3t-value&chat=1",
]
HARMLESS = [
    "delivery 12345678 sent at 2026-11-29 23:41:32",
    "feed 7 level 1510 cm",
    "listening on 127.0.0.1:8000",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
]


@pytest.mark.parametrize("line", PERSONAL)
def test_personal_data_and_secrets_are_redacted(line):
    assert personal_data_in(line), "the suite's check must see it in the raw line"
    redacted = logs.redact(line)
    assert personal_data_in(redacted) is None, redacted
    assert "[" in redacted


@pytest.mark.parametrize("line", HARMLESS)
def test_numbers_that_are_no_phone_numbers_stay(line):
    assert logs.redact(line) == line and personal_data_in(line) is None


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("broadcast.test", logging.INFO, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


def test_json_lines_redact_extra_fields_and_tracebacks():
    try:
        raise ValueError("no such subscriber +31612345678")
    except ValueError:
        import sys

        failure = sys.exc_info()
    line = logs.JsonFormatter().format(
        record(
            "sent to %s",
            "06 1234 5678",
            exc_info=failure,
            to="0031612345678",
            nested={"account": SID, "ids": [1, 2]},
            attempt=3,
        )
    )
    entry = json.loads(line)
    assert entry["message"] == "sent to [phone]" and entry["to"] == "[phone]"
    assert entry["nested"] == {"account": "[sid]", "ids": [1, 2]} and entry["attempt"] == 3
    assert "+31612345678" not in entry["error"] and "ValueError" in entry["error"]
    assert personal_data_in(line) is None


def test_text_lines_redact_the_traceback_too():
    try:
        raise RuntimeError(f"account {SID}")
    except RuntimeError:
        import sys

        line = logs.text_formatter().format(record("failed", exc_info=sys.exc_info()))
    assert SID not in line and "[sid]" in line


@pytest.fixture
def configured_root():
    """``logs.configure`` as ``broadcast serve`` runs it (writing here), undone afterwards."""
    loggers = [logging.getLogger(name) for name in ("", *logs.OWN)]
    handlers, levels = loggers[0].handlers[:], [logger.level for logger in loggers]
    # The stand-ins' uvicorn servers set up uvicorn's own logging; `broadcast serve` does not.
    uvicorn = logging.getLogger("uvicorn")
    propagates, uvicorn.propagate = uvicorn.propagate, True
    logs.configure("INFO", as_json=True)
    written = io.StringIO()
    loggers[0].handlers[-1].setStream(written)  # configure's own comes last
    yield written
    loggers[0].handlers[:] = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
    uvicorn.propagate = propagates


def test_other_libraries_are_heard_only_from_warning_up(configured_root):
    for name in ("twilio.http_client", "httpx", "telegram.ext.Application", "apscheduler"):
        logging.getLogger(name).info("-- POST /Accounts/%s/Messages.json", SID)
        logging.getLogger(name).warning("%s trouble", name)
    logging.getLogger("broadcast.dispatcher").info("dispatcher started")
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:8000")
    written = [json.loads(line) for line in configured_root.getvalue().splitlines()]
    assert [(e["logger"], e["level"]) for e in written] == [
        ("twilio.http_client", "WARNING"),
        ("httpx", "WARNING"),
        ("telegram.ext.Application", "WARNING"),
        ("apscheduler", "WARNING"),
        ("broadcast.dispatcher", "INFO"),
        ("uvicorn.error", "INFO"),
    ]


def test_the_suite_wide_check_catches_a_line_that_escaped_redaction():
    check = LogCheck()
    check.formatters = (logging.Formatter("%(message)s"),)  # a formatter that forgot to redact
    check.handle(record("sms naar %s", "06 1234 5678"))
    check.handle(logging.LogRecord("twilio", logging.INFO, __file__, 1, SID, (), None))
    assert len(check.leaks) == 1 and "a phone number" in check.leaks[0]  # twilio INFO: not written


class Terminal:
    """A stream that says it is a terminal, as standard error is in an operator's shell."""

    def __init__(self, tty: bool):
        self.tty, self.lines = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


def test_logs_are_readable_on_a_terminal_and_json_otherwise():
    root, uvicorn = logging.getLogger(), logging.getLogger("uvicorn")
    saved = root.handlers[:], root.level, uvicorn.propagate
    uvicorn.propagate = True  # as under `broadcast serve`; a server started earlier turned it off
    try:
        for tty in (True, False):
            stream = Terminal(tty)
            logs.configure("INFO", None, stream=stream)
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on %s",
                "http://127.0.0.1:8731",
                extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"},
            )
            line = "".join(stream.lines).strip()
            if tty:
                assert line.endswith("INFO uvicorn.error: Uvicorn running on http://127.0.0.1:8731")
            else:
                entry = json.loads(line)
                assert entry["message"] == "Uvicorn running on http://127.0.0.1:8731"
                assert "color_message" not in entry and "\x1b" not in line
        stream = Terminal(True)
        logs.configure("INFO", True, stream=stream)  # configured: JSON even on a terminal
        logging.getLogger("broadcast").info("hello")
        assert json.loads("".join(stream.lines))["message"] == "hello"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        uvicorn.propagate = saved[2]


def test_configuring_again_replaces_only_its_own_handler():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        logs.configure("INFO", True, stream=io.StringIO())
        logs.configure("INFO", True, stream=io.StringIO())
        ours = [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]
        assert len(ours) == 1 and other in root.handlers
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
