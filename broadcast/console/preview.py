"""What an update will look like on each channel before it is sent, and plain-language hints.

Each preview is the adapter's own ``render``, ``plain_text`` and ``measure``, so what the adviser
sees is what residents get. The registered adapters that declare ``previewed`` are shown; those
not configured here with their default settings, marked as off: an adviser should still see that
a text is two SMS long before the SMS account exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from channels.base import Channel, UpdateView
from channels.registry import discover


@dataclass(frozen=True)
class Preview:
    channel: str
    active: bool
    text: str  # as residents read it (markup removed)
    length: int
    limit: int | None
    unit: str  # "chars", or "segments" for SMS
    parts: int
    shortened: bool
    encoding: str | None = None


def previewed() -> list[type[Channel]]:
    """The registered adapters that ask to be previewed, whether they are configured or not."""
    found, _broken = discover()
    return [cls for cls in found.values() if cls.previewed]


def previews(
    view: UpdateView, language: str, active: dict[str, Channel], classes: list[type[Channel]]
) -> list[Preview]:
    return [
        _preview(active.get(cls.name) or cls.preview_renderer(), cls.name in active, view, language)
        for cls in classes
    ]


def _preview(channel: Channel, active: bool, view: UpdateView, language: str) -> Preview:
    message = channel.render(view, language)
    text = channel.plain_text(message)
    size = channel.measure(text)
    return Preview(
        channel.name,
        active,
        text,
        size.length,
        size.limit,
        size.unit,
        message.parts,
        message.shortened,
        size.encoding,
    )


# --- plain language ------------------------------------------------------------------------

LONG_SENTENCE_WORDS = 20
# Official Dutch with a plain word residents use (after the B1 word lists of Direct Duidelijk).
PLAIN_WORDS = {
    "alsmede": "en",
    "middels": "met",
    "teneinde": "om",
    "derhalve": "daarom",
    "thans": "nu",
    "reeds": "al",
    "indien": "als",
    "inzake": "over",
    "tevens": "ook",
    "woonachtig": "wonend",
    "ingevolge": "door",
    "aanvang": "begin",
    "verstrekken": "geven",
    "verzoeken": "vragen",
    "dienen": "moeten",
    "calamiteit": "ramp of noodsituatie",
    "evacuatie": "vertrek uit het gebied",
    "preventief": "voor de zekerheid",
    "geïnformeerd": "op de hoogte gebracht",
    "ter hoogte van": "bij",
    "in verband met": "door",
    "met betrekking tot": "over",
    "dan wel": "of",
}
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_WORDS = re.compile(r"\w+(?:[-']\w+)*")


@dataclass(frozen=True)
class Hint:
    kind: str  # "long_sentence" or "jargon"
    text: str  # the sentence or the word
    suggestion: str = ""
    words: int = 0


def plain_language_hints(text: str) -> list[Hint]:
    hints = [
        Hint("long_sentence", sentence, words=count)
        for sentence in _SENTENCES.split(text.strip())
        if (count := len(_WORDS.findall(sentence))) > LONG_SENTENCE_WORDS
    ]
    lowered = f" {' '.join(_WORDS.findall(text.lower()))} "
    hints += [
        Hint("jargon", word, suggestion)
        for word, suggestion in PLAIN_WORDS.items()
        if f" {word} " in lowered
    ]
    return hints
