"""What an update will look like on each channel before it is sent, and plain-language hints.

Each preview is the adapter's own ``render``, so what the adviser sees is what residents get.
Channels that are not configured here are previewed with their default settings, marked as off:
an adviser should still see that a text is two SMS long before the SMS account exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace

from channels.base import Channel, UpdateView
from channels.mastodon import MastodonChannel
from channels.sms import SmsChannel, WhatsAppChannel
from channels.telegram import TelegramChannel
from channels.text import mastodon_length, sms_info, utf16_len

PREVIEWED: tuple[type[Channel], ...] = (
    SmsChannel,
    WhatsAppChannel,
    TelegramChannel,
    MastodonChannel,
)
_TAGS = re.compile(r"<[^>]+>")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&amp;": "&"}


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


def previews(view: UpdateView, language: str, active: dict[str, Channel]) -> list[Preview]:
    return [_preview(cls, active.get(cls.name), view, language) for cls in PREVIEWED]


def _preview(cls: type[Channel], channel: Channel | None, view: UpdateView, lang: str) -> Preview:
    renderer = channel or SimpleNamespace(settings=cls.Settings(), limits=cls.limits)
    message = cls.render(renderer, view, lang)  # type: ignore[arg-type]
    text = _plain(message.text) if cls is TelegramChannel else message.text
    if cls is SmsChannel:
        info = sms_info(text)
        limit = renderer.settings.max_segments
        return Preview(
            cls.name,
            channel is not None,
            text,
            info.segments,
            limit,
            "segments",
            message.parts,
            message.shortened,
            info.encoding,
        )
    length = mastodon_length(text) if cls is MastodonChannel else utf16_len(text)
    return Preview(
        cls.name,
        channel is not None,
        text,
        length,
        cls.limits.max_chars,
        "chars",
        1,
        message.shortened,
    )


def _plain(html: str) -> str:
    text = _TAGS.sub("", html)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


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
