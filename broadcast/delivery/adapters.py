"""The adapters this process runs: loaded through the registry, configured from settings.

A channel without its credentials is off and says so once at start-up (and in ``/healthz``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from broadcast.settings import Settings
from channels.base import Channel, ChannelContext
from channels.errors import NotConfigured
from channels.registry import discover

log = logging.getLogger(__name__)


@dataclass
class ChannelSet:
    active: dict[str, Channel] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)  # name -> why it is off

    def __contains__(self, name: str) -> bool:
        return name in self.active

    def __getitem__(self, name: str) -> Channel:
        return self.active[name]

    def chosen(self, requested: Iterable[str] | None) -> list[Channel]:
        """The running channels an update goes to: all of them, or those it names."""
        if requested is None:
            return list(self.active.values())
        return [self.active[name] for name in requested if name in self.active]

    async def start(self) -> None:
        for channel in self.active.values():
            await channel.start()

    async def close(self) -> None:
        for channel in self.active.values():
            await channel.close()


def load(
    settings: Settings, context: ChannelContext, classes: Iterable[type[Channel]] | None = None
) -> ChannelSet:
    if classes is None:
        found, broken = discover()
    else:
        found, broken = {cls.name: cls for cls in classes}, {}
    channels = ChannelSet(disabled=dict(broken))
    for name, cls in found.items():
        if settings.channels_enabled and name not in settings.channels_enabled:
            channels.disabled[name] = "not in BROADCAST_CHANNELS_ENABLED"
            continue
        try:
            channels.active[name] = configure(cls, settings, context)
        except (NotConfigured, ValidationError, ValueError) as exc:
            channels.disabled[name] = _reason(exc)
    for name, reason in sorted(channels.disabled.items()):
        log.warning("channel %s is off: %s", name, reason)
    log.info("channels on: %s", ", ".join(sorted(channels.active)) or "none")
    return channels


def configure(cls: type[Channel], settings: Settings, context: ChannelContext) -> Channel:
    prefix = cls.settings_prefix or cls.name
    names = [field.alias or name for name, field in cls.Settings.model_fields.items()]
    values = settings.channel_values(cls.name, prefix, names, cls.settings_env)
    return cls(cls.Settings.model_validate(values), context)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)
