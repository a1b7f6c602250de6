"""Structured logs without personal data: JSON lines, and a redaction filter as a safety net
for phone numbers, bearer tokens and bot tokens that slip into a message."""

from __future__ import annotations

import json
import logging
import re

REDACTIONS = [
    (re.compile(r"(?<![\w:])\+\d[\d ]{7,16}\d"), "[phone]"),
    (re.compile(r"\b06[- ]?\d{8}\b"), "[phone]"),
    (re.compile(r"\bbc_[A-Za-z0-9_\-]{20,}"), "[token]"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}"), "[bot-token]"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"']+"), r"\1[token]"),
]
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in STANDARD})
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = redact(record.message)
        return super().formatMessage(record)


def configure(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
