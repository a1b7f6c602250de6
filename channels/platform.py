"""The public web platform: always on. Sending means announcing the update to the live pages
(Server-Sent Events); the pages and the Atom feed read published updates themselves."""

from __future__ import annotations

from dataclasses import asdict

from channels.base import (
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSettings,
    Limits,
    Message,
    Receipt,
    Target,
    UpdateView,
)
from channels.errors import NotConfigured
from channels.text import compose_plain

PUBLIC_TARGET = "public"


class PlatformChannel(Channel):
    name = "platform"
    limits = Limits(per_second=None, concurrency=4)
    capabilities = Capabilities(one_to_many=True, own_site=True)

    def __init__(self, settings: ChannelSettings, context: ChannelContext):
        super().__init__(settings, context)
        if context.announce is None:
            raise NotConfigured("the core did not provide a live announcer")

    def broadcast_targets(self) -> list[str]:
        return [PUBLIC_TARGET]

    def render(self, update: UpdateView, language: str) -> Message:
        return Message(
            update_id=update.id,
            language=language,
            text=compose_plain(update, language),
            data={"update": update},
        )

    async def send(self, message: Message, target: Target) -> Receipt:
        assert self.context.announce is not None
        await self.context.announce(message.data["update"])
        return Receipt(provider_id=f"update-{message.update_id}", delivered=True)


def as_json(update: UpdateView) -> dict:
    data = asdict(update)
    for key in ("published_at", "next_update_due"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return data
