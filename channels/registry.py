"""Find channel adapters: entry points in the group ``broadcast.channels``, built-ins included.

Each entry point is loaded on its own, so one broken plugin cannot stop the others; two adapters
with one name are a start-up error. Tests pass their classes explicitly instead of scanning.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from channels.base import Channel

GROUP = "broadcast.channels"
log = logging.getLogger(__name__)


class DuplicateChannel(RuntimeError):
    pass


def discover() -> tuple[dict[str, type[Channel]], dict[str, str]]:
    """Returns the adapter classes by name, and the names that failed to load with the reason."""
    classes: dict[str, type[Channel]] = {}
    broken: dict[str, str] = {}
    for entry in entry_points(group=GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # a plugin's import error must not stop the service
            broken[entry.name] = f"failed to load {entry.value}: {exc}"
            log.exception("channel adapter %s failed to load", entry.name)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Channel)) or cls.name != entry.name:
            broken[entry.name] = f"{entry.value} is not a Channel named {entry.name!r}"
            continue
        if entry.name in classes and classes[entry.name] is not cls:
            raise DuplicateChannel(f"two channel adapters are named {entry.name!r}")
        classes[entry.name] = cls
    return classes, broken
