"""A channel adapter that exists in the test suite only: the municipality's carrier pigeon.

It is everything a new channel needs to be: this file and one entry point (registered by the
``pigeon_registered`` fixture in tests/channels/test_registry.py, never in pyproject.toml). The
core must preview it and dispatch to it without one line of the core knowing its name.
"""

from __future__ import annotations

from channels.base import Capabilities, Channel, Limits, Message, Receipt, Target, UpdateView
from channels.text import compose_plain, fit

NOTE_CHARS = 140  # what fits on the paper in the little tube
LOFT = "loft"  # the one place every update flies to


class PigeonChannel(Channel):
    name = "pigeon"
    limits = Limits(max_chars=NOTE_CHARS, per_second=None, concurrency=1)
    capabilities = Capabilities(one_to_many=True)
    previewed = True
    title = "Postduif"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.carried: list[tuple[Message, Target]] = []

    def broadcast_targets(self) -> list[str]:
        return [LOFT]

    def subscribe_link(self, postcode: str | None = None) -> str | None:
        """Residents ask the loft for a pigeon: by letter, to the town hall's address."""
        return f"https://duiven.example/aanmelden?postcode={postcode or ''}"

    def render(self, update: UpdateView, language: str) -> Message:
        note = fit(compose_plain(update, language), NOTE_CHARS, update.url)
        return Message(update.id, language, note.text, shortened=note.shortened)

    async def send(self, message: Message, target: Target) -> Receipt:
        self.carried.append((message, target))
        return Receipt(provider_id=f"pigeon-{len(self.carried)}", delivered=True)
