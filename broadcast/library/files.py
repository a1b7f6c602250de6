"""The shipped, pre-approved message templates (``config/templates.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from broadcast.i18n import LANGUAGES


@dataclass(frozen=True)
class MessageTemplate:
    key: str
    severity: str
    title: dict[str, str]
    body: dict[str, str]
    id: int | None = None  # the stored row of an officer's version, if any


def load(path: Path) -> list[MessageTemplate]:
    if not path.exists():
        return []
    return list(_read(path, path.stat().st_mtime_ns))


@lru_cache(maxsize=4)
def _read(path: Path, mtime: int) -> tuple[MessageTemplate, ...]:  # mtime: re-read on change
    with path.open("rb") as source:
        entries = tomllib.load(source).get("template", [])
    return tuple(
        MessageTemplate(
            key=entry["key"],
            severity=entry.get("severity", "info"),
            title=entry.get("title", {}),
            body={lang: entry[lang].strip() for lang in LANGUAGES if entry.get(lang)},
        )
        for entry in entries
    )
