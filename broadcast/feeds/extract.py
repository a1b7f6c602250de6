"""From fetched bytes to readings or CAP alerts, per kind. A registry, so a new kind of source is
one function here: ``EXTRACTORS[kind](content, options) -> Extracted``; it raises ``FeedError``
with a reason for a document it cannot read (never a guess)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from broadcast.feeds.cap import CapAlert, parse_cap
from broadcast.feeds.parsing import FeedError, Reading, parse_json, parse_levels


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
