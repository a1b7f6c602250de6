"""From fetched bytes to readings or CAP alerts, per kind. A registry, so a new kind of source is
one function here: ``EXTRACTORS[kind](content, options) -> Extracted``; it raises ``FeedError``
with a reason for a document it cannot read (never a guess).

``Parsers.extract_newest`` is what a poll calls: it parses in a worker process (feedparser is
pure Python and holds the GIL for seconds on a large document, which would slow the event loop
and every request thread) and keeps only the newest ``limit`` entries, so neither the pickled
answer nor the transaction that stores it grows with the document.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace

from broadcast.feeds.parse.cap import CapAlert, parse_cap
from broadcast.feeds.parse.parsing import FeedError, Reading, parse_json, parse_levels

log = logging.getLogger(__name__)
MAX_WARNINGS = 20  # a document can skip every entry with a warning; only the first few are kept


@dataclass(frozen=True)
class Options:
    unit: str | None = None
    value_pattern: str | None = None
    items_path: str | None = None
    value_path: str | None = None
    time_path: str | None = None


@dataclass(frozen=True)
class Extracted:
    readings: list[Reading] = field(default_factory=list)
    alerts: list[CapAlert] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return len(self.readings) + len(self.alerts)


def _level(content: bytes, options: Options) -> Extracted:
    result = parse_levels(content, value_pattern=options.value_pattern, unit=options.unit)
    return Extracted(readings=result.readings, warnings=result.warnings)


def _json(content: bytes, options: Options) -> Extracted:
    if not (options.items_path is not None and options.value_path and options.time_path):
        raise FeedError("a json source needs items_path, value_path and time_path")
    result = parse_json(
        content,
        items_path=options.items_path,
        value_path=options.value_path,
        time_path=options.time_path,
        unit=options.unit,
    )
    return Extracted(readings=result.readings, warnings=result.warnings)


def _cap(content: bytes, options: Options) -> Extracted:
    result = parse_cap(content)
    return Extracted(alerts=result.alerts, warnings=result.warnings)


EXTRACTORS: dict[str, Callable[[bytes, Options], Extracted]] = {
    "level": _level,
    "json": _json,
    "cap": _cap,
}


def extract(kind: str, content: bytes, options: Options) -> Extracted:
    try:
        extractor = EXTRACTORS[kind]
    except KeyError:
        raise FeedError(f"unknown kind {kind!r}") from None
    try:
        return extractor(content, options)
    except FeedError:
        raise
    except Exception as exc:  # a parser bug must not look like a healthy feed
        raise FeedError(f"could not be read: {type(exc).__name__}: {exc}") from exc


def keep_newest(extracted: Extracted, limit: int) -> Extracted:
    """The newest ``limit`` readings or alerts, and a warning that says what was left out."""
    total = extracted.entries
    if total <= limit:
        return extracted
    readings = sorted(extracted.readings, key=lambda r: r.observed_at, reverse=True)[:limit]
    alerts = sorted(extracted.alerts, key=lambda a: a.sent, reverse=True)[:limit]
    note = f"kept the {limit:,} newest of {total:,} entries (feed_max_entries)"
    return replace(
        extracted, readings=readings, alerts=alerts, warnings=[note, *extracted.warnings]
    )


def _extract_newest(kind: str, content: bytes, options: Options, limit: int) -> Extracted:
    extracted = keep_newest(extract(kind, content, options), limit)
    if len(extracted.warnings) > MAX_WARNINGS:  # one per skipped entry: bounded, like the rest
        more = len(extracted.warnings) - MAX_WARNINGS
        warnings = [*extracted.warnings[:MAX_WARNINGS], f"and {more:,} more warnings"]
        extracted = replace(extracted, warnings=warnings)
    return extracted


class Parsers:
    """Up to ``workers`` processes that parse for one poller (0: parse in the calling thread),
    started at the first poll and stopped by ``close``."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def extract_newest(self, kind: str, content: bytes, options: Options, limit: int) -> Extracted:
        if self.workers <= 0:
            return _extract_newest(kind, content, options, limit)
        try:
            future = self._start().submit(_extract_newest, kind, content, options, limit)
        except (OSError, AssertionError) as exc:  # no child processes here (a daemonic process)
            log.warning("feeds are parsed in the poll thread: %s", exc)
            self.workers = 0
            return _extract_newest(kind, content, options, limit)
        try:
            return future.result()
        except BrokenProcessPool:
            self.close()
            raise FeedError(
                "the parser process died (out of memory?); the next poll retries"
            ) from None

    def _start(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the service has threads (and their locks) a fork would copy.
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """A parser process ends when the service does, even when the service was killed."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
