"""Structured logs without personal data: JSON lines (or text), other libraries heard only when
something goes wrong, and redaction as a safety net for phone numbers, e-mail addresses,
Twilio account SIDs and tokens that slip into a message, an extra field or a traceback.

Phone numbers are found by ``phonenumbers`` (Dutch numbers written any usual way:
``06 1234 5678``, ``0031612345678``, ``+31 6 12345678``; foreign ones in international form).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from phonenumbers import Leniency, PhoneNumberMatcher

OWN = ("broadcast", "channels", "uvicorn.error")  # uvicorn.error: the server's start-up lines
REGION = "NL"
HANDLER_NAME = "broadcast"
REDACTIONS = [
    (re.compile(r"\bAC[0-9a-fA-F]{32}\b"), "[sid]"),
    (re.compile(r"[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b"), "[email]"),
    (re.compile(r"\bbc_[A-Za-z0-9_\-]{20,}"), "[token]"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}"), "[bot-token]"),
    (re.compile(r"(?i)(bearer\s+)(?!\[token\])[^\s\"']+"), r"\1[token]"),
    (
        re.compile(
            r"(?i)\b((?:api[_-]?)?(?:key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+"
        ),
        r"\1[token]",
    ),
]
_DIGITS = re.compile(r"\d")
# ``color_message``: uvicorn's copy of its message with ANSI colour codes, for its own formatter.
STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return _without_phone_numbers(text)


def _without_phone_numbers(text: str) -> str:
    if len(_DIGITS.findall(text)) < 7:  # too few digits for any number: skip the parser
        return text
    for match in reversed(list(PhoneNumberMatcher(text, REGION, leniency=Leniency.VALID))):
        text = text[: match.start] + "[phone]" + text[match.end :]
    return text


def _redacted(value: Any) -> Any:
    """An ``extra`` field's value, fit for a JSON line."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redacted(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        extra = {k: v for k, v in vars(record).items() if k not in STANDARD}
        entry.update(_redacted(extra))
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # the message, and any traceback


def text_formatter() -> logging.Formatter:
    return RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class OwnOrWarning(logging.Filter):
    """Other libraries only from WARNING up: at INFO they log every request, with account
    SIDs and addresses in it (twilio, httpx, telegram, apscheduler, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return record.levelno >= logging.WARNING or any(
            name == own or name.startswith(own + ".") for own in OWN
        )


def configure(level: str = "INFO", as_json: bool | None = True, stream: Any = None) -> None:
    """Log to ``stream`` (standard error): JSON lines, or readable text lines; ``None`` chooses
    text on a terminal and JSON otherwise (a log collector, a file, a container)."""
    handler = logging.StreamHandler(stream)
    if as_json is None:
        as_json = not _is_terminal(handler.stream)
    handler.setFormatter(JsonFormatter() if as_json else text_formatter())
    handler.addFilter(OwnOrWarning())  # also for a library that sets its own logger's level
    root = logging.getLogger()
    # Replaces only its own earlier handler: others (a test's log check, an embedding app's) stay.
    handler.set_name(HANDLER_NAME)
    root.handlers[:] = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.WARNING))
    for name in OWN:
        logging.getLogger(name).setLevel(level.upper())


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
