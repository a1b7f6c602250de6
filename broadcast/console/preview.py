"""What an update will look like on each channel before it is sent, and plain-language hints.

Each preview is the adapter's own ``render``, ``plain_text`` and ``measure``, so what the adviser
sees is what residents get. The registered adapters that declare ``previewed`` are shown; those
not configured here with their default settings, marked as off: an adviser should still see that
a text is two SMS long before the SMS account exists.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from broadcast.fanout.audience import Reach
from channels.base import Channel, UpdateView
from channels.registry import discover
from channels.text import sms_info, ucs2_culprits, without_culprits


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


# --- what publishing will do: audience, SMS segments and cost ------------------------------

SMS = "sms"
CENTS = Decimal("0.01")


@dataclass(frozen=True)
class SmsLanguage:
    """The SMS in one language: who gets it, how long it is, and what it costs."""

    language: str
    recipients: int
    segments: int
    encoding: str
    culprits: list[dict]  # the characters that are not GSM-7 (``channels.text.Culprit``)
    segments_replaced: int  # with the suggested stand-ins applied
    encoding_replaced: str
    cost: str | None  # euros, two decimals; None without a price per segment


def audience_of(reached: dict[str, Reach], classes: list[type[Channel]]) -> list[dict]:
    """Recipients per channel the update would go out on, then the previewed channels that
    are off (they reach nobody)."""
    out = [
        {
            "channel": name,
            "active": True,
            "recipients": got.subscribers + got.targets,
            "subscribers": got.subscribers,
            "targets": got.targets,
        }
        for name, got in reached.items()
    ]
    off = [cls.name for cls in classes if cls.name not in reached]
    return out + [
        {"channel": name, "active": False, "recipients": 0, "subscribers": 0, "targets": 0}
        for name in off
    ]


def sms_languages(
    view: UpdateView,
    channel: Channel,
    reach: Reach | None,
    price: Decimal | None,
) -> list[SmsLanguage]:
    """Segments per language as the SMS adapter renders them (Dutch always; English where an
    English text is typed or English subscribers are reached), and their cost."""
    by_language = reach.by_language if reach else {}
    languages = ["nl"] + (["en"] if "en" in view.body or by_language.get("en") else [])
    return [
        _sms_language(view, channel, lang, by_language.get(lang, 0), price) for lang in languages
    ]


def _sms_language(
    view: UpdateView, channel: Channel, language: str, recipients: int, price: Decimal | None
) -> SmsLanguage:
    typed = view.text(language)
    as_sent = _sms_of(view, channel, language)
    replaced_body = {lang: without_culprits(text) for lang, text in view.body.items()}
    with_stand_ins = _sms_of(replace(view, body=replaced_body), channel, language)
    return SmsLanguage(
        language,
        recipients,
        as_sent[0],
        as_sent[1],
        [asdict(c) for c in ucs2_culprits(typed)],
        with_stand_ins[0],
        with_stand_ins[1],
        cost(price, as_sent[0], recipients),
    )


def _sms_of(view: UpdateView, channel: Channel, language: str) -> tuple[int, str]:
    message = channel.render(view, language)
    return message.parts, sms_info(channel.plain_text(message)).encoding


def cost(price: Decimal | None, segments: int, recipients: int) -> str | None:
    """Price × segments × recipients, in euros rounded to the cent; None without a price."""
    if price is None:
        return None
    return str((price * segments * recipients).quantize(CENTS, ROUND_HALF_UP))


def total_cost(price: Decimal | None, languages: list[SmsLanguage]) -> str | None:
    if price is None:
        return None
    total = sum((price * s.segments * s.recipients for s in languages), Decimal())
    return str(total.quantize(CENTS, ROUND_HALF_UP))


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
