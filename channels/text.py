"""Text shaping shared by the adapters: SMS segments, Telegram and Mastodon lengths, one
overflow policy, and the Dutch-first plain message every channel starts from.

Standard library only (plus ``channels.base``), so every adapter may import it. All functions
are pure. Fit functions work on *plain* text: escape or format for the provider afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

from channels.base import DEFAULT_LANGUAGE, LANGUAGES, UpdateView

# --- SMS -----------------------------------------------------------------------------------

# GSM 03.38 default alphabet (127 characters; the escape code itself is not text).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: sent as escape + character, so each costs 2 septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

# Typography editors paste from word processors. One curly quote would switch the whole
# message to UCS-2 and more than double its segments. Letters are never touched.
_GSM_FRIENDLY = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′‹›", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–—―−•", "-"),
        **dict.fromkeys(
            "\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
            "\u2009\u200a\u202f\u205f\u3000",
            " ",
        ),
        **dict.fromkeys("\u00ad\u200b\u2060\ufeff", None),  # invisible: soft hyphen, ZWSP, BOM
        "\u2028": "\n",
        "\u2029": "\n",
        "…": "...",
    }
)

SMS_SINGLE = {"GSM-7": 160, "UCS-2": 70}  # units in a message of one segment
SMS_CONCATENATED = {"GSM-7": 153, "UCS-2": 67}  # the UDH takes the rest of each segment


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


@dataclass(frozen=True)
class FittedText:
    text: str
    parts: int = 1  # SMS segments; 1 on other channels
    shortened: bool = False


def gsm_friendly(text: str) -> str:
    """Replace typographic characters that have a plain GSM-7 equivalent."""
    return text.translate(_GSM_FRIENDLY)


def sms_info(text: str) -> SmsInfo:
    """Encoding, units and segments as carriers bill them. Empty text is 1 segment: it is
    still a message, and providers charge it as one."""
    if set(text) <= _GSM7:
        encoding, costs = "GSM-7", [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        # Carriers call it UCS-2 but send UTF-16: an emoji is a surrogate pair, 2 units.
        encoding, costs = "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(costs)
    if units <= SMS_SINGLE[encoding]:
        return SmsInfo(encoding, units, 1)
    return SmsInfo(encoding, units, _pack(costs, SMS_CONCATENATED[encoding]))


@dataclass(frozen=True)
class Culprit:
    """A character that is not GSM-7, so one of them sends the whole SMS as UCS-2."""

    char: str
    count: int
    replacement: str | None  # a GSM-7 stand-in (may be "", to leave it out); None: none known
    automatic: bool  # the SMS adapter replaces it itself (``gsm_friendly``)


def ucs2_culprits(text: str) -> list[Culprit]:
    """Every non-GSM-7 character of ``text`` once, in order, with a suggested stand-in: the
    typographic ones the adapter replaces anyway, and letters whose accent GSM-7 lacks ("ë" →
    "e"; "é" and "ü" are GSM-7 and never listed)."""
    found: dict[str, int] = {}
    for char in text:
        if char not in _GSM7:
            found[char] = found.get(char, 0) + 1
    return [Culprit(char, count, *_stand_in(char)) for char, count in found.items()]


def _stand_in(char: str) -> tuple[str | None, bool]:
    friendly = char.translate(_GSM_FRIENDLY)
    if friendly != char:
        return friendly, True
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    if base and base != char and set(base) <= _GSM7:
        return base, False
    return None, False


def without_culprits(text: str) -> str:
    """``text`` with every suggested stand-in applied (what "replace all" would send)."""
    stand_ins: dict[str, str | int | None] = {
        c.char: c.replacement for c in ucs2_culprits(text) if c.replacement is not None
    }
    return text.translate(str.maketrans(stand_ins)) if stand_ins else text


def _pack(costs: list[int], per_segment: int) -> int:
    """Segments needed when a 2-unit character (escape pair, surrogate pair) never straddles."""
    if len(costs) == sum(costs):
        return -(-len(costs) // per_segment)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments, used = segments + 1, 0
        used += cost
    return segments


def _sms_segments(text: str) -> int:
    return sms_info(text).segments


def fit_sms(text: str, link: str, max_segments: int) -> FittedText:
    """Fit ``text`` in ``max_segments``. Apply ``gsm_friendly`` first to stay in GSM-7."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    # "..." rather than "…": the latter alone would force UCS-2.
    fitted = fit(text, max_segments, link, measure=_sms_segments, ellipsis="...")
    return replace(fitted, parts=_sms_segments(fitted.text))


# --- Telegram ------------------------------------------------------------------------------

TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


def telegram_escape(text: str) -> str:
    """Escape for parse_mode=HTML; the Bot API needs only &, < and > replaced."""
    return escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def fit_telegram(text: str, link: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> FittedText:
    """Fit plain text: the limit applies after entity parsing, so escape the result later.
    Use ``limit=TELEGRAM_CAPTION_LIMIT`` for media captions."""
    return fit(text, limit, link, measure=utf16_len)


# --- Mastodon ------------------------------------------------------------------------------

MASTODON_LIMIT = 500
MASTODON_URL_LENGTH = 23
# A URL runs to the next whitespace, without the punctuation that ends a sentence.
_URL = re.compile(r"https?://\S+?(?=[.,:;!?'\")\]]*(?:\s|$))")
# Account::MENTION_RE: the "@domain" part of a remote mention is free.
_REMOTE_MENTION = re.compile(
    r"(?<![=/\w])(@[a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_])?)@[\w.-]+\w", re.IGNORECASE
)


def mastodon_length(text: str) -> int:
    """Length as Mastodon validates it. Mastodon counts grapheme clusters; code points are
    an upper bound (the standard library has no grapheme segmentation), so a fitted post
    may end a few characters early around emoji, never too long."""
    countable = _URL.sub("x" * MASTODON_URL_LENGTH, text)
    return len(_REMOTE_MENTION.sub(r"\1", countable))


def fit_mastodon(text: str, link: str, limit: int = MASTODON_LIMIT) -> FittedText:
    return fit(text, limit, link, measure=mastodon_length)


# --- One overflow policy -------------------------------------------------------------------

Measure = Callable[[str], int]
_STRIP = " \t\r\n.,;:-–—…([{"  # what may dangle before an ellipsis; quotes may close
_WORD_CUT_MIN = 0.7  # a word boundary must keep at least this share, else cut hard


def fit(
    text: str, limit: int, link: str, measure: Measure = len, ellipsis: str = "…"
) -> FittedText:
    """``text`` unchanged when ``measure(text) <= limit``; otherwise the longest cut (at a word
    boundary when there is one near the end) + ellipsis + separator + link. The link is
    dropped when it cannot fit on its own. ``measure`` must grow with the text."""
    if measure(text) <= limit:
        return FittedText(text)
    suffix = _suffix(text, link, limit, measure, ellipsis)
    end = _longest_prefix(text, suffix, limit, measure)
    fitted = _cut(text, end) + suffix
    if measure(fitted) > limit:  # measures with URL rules are only roughly monotonic
        fitted = text[:end] + suffix
    return FittedText(fitted, shortened=True)


def _suffix(text: str, link: str, limit: int, measure: Measure, ellipsis: str) -> str:
    separator = "\n" if "\n" in text else " "  # a multi-line message gets the link on its own
    options = (ellipsis + separator + link, ellipsis) if link else (ellipsis,)
    return next((suffix for suffix in options if measure(suffix) <= limit), "")


def _longest_prefix(text: str, suffix: str, limit: int, measure: Measure) -> int:
    """Binary search for the longest ``text[:n]`` that fits with ``suffix`` (n < len(text))."""
    low, high = 0, len(text) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle] + suffix) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _cut(text: str, end: int) -> str:
    """``text[:end]`` backed up to the last whitespace, or hard-cut when that loses too much."""
    boundary = end
    while boundary > 0 and not text[boundary].isspace():
        boundary -= 1
    if boundary < end * _WORD_CUT_MIN:
        boundary = _grapheme_start(text, end)
    return text[:boundary].rstrip(_STRIP)


def _grapheme_start(text: str, index: int) -> int:
    """Move a hard cut back so it does not separate an accent or an emoji modifier."""
    while index > 0 and (_joins_previous(text[index]) or text[index - 1] == "\u200d"):
        index -= 1
    return index


def _joins_previous(char: str) -> bool:
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char in "\u200d\ufe0e\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tones
    )


# --- Labels and composition ----------------------------------------------------------------

SEVERITY_LABELS: dict[str, dict[str, str]] = {
    "info": {"nl": "Informatie", "en": "Information"},
    "advisory": {"nl": "Let op", "en": "Advisory"},
    "warning": {"nl": "Waarschuwing", "en": "Warning"},
    "emergency": {"nl": "Noodsituatie", "en": "Emergency"},
}
KIND_LABELS: dict[str, dict[str, str]] = {
    "correction": {"nl": "Correctie", "en": "Correction"},
    "retraction": {"nl": "Ingetrokken", "en": "Retracted"},
    "all_clear": {"nl": "Alles veilig", "en": "All clear"},
    "answer": {"nl": "Vraag en antwoord", "en": "Questions and answers"},
}
_HEADLINE_SEVERITIES = ("warning", "emergency")
# These end the alarm: repeating "Noodsituatie" in their headline would raise it again.
_ALARM_ENDING_KINDS = ("retraction", "all_clear")

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Written out so output never depends on the system locale.
_DAYS = {
    "nl": ("ma", "di", "wo", "do", "vr", "za", "zo"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_MONTHS = {
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
_NEXT_TODAY = {"nl": "Volgende update verwacht om {time}", "en": "Next update expected at {time}"}
_NEXT_OTHER_DAY = {
    "nl": "Volgende update verwacht op {date} om {time}",
    "en": "Next update expected on {date} at {time}",
}
_THANKS = {"nl": "Met dank aan {credit}", "en": "Thanks to {credit}"}


def _language(language: str) -> str:
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def kind_label(kind: str, language: str) -> str | None:
    """The label that tells a reader this is not a regular update; None for a regular one."""
    labels = KIND_LABELS.get(kind)
    return labels[_language(language)] if labels else None


def _local(moment: datetime) -> datetime:
    """In Amsterdam time; a naive datetime is taken as UTC, as the database stores them."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(AMSTERDAM)


def next_update_line(due: datetime, language: str, now: datetime | None = None) -> str:
    """When the next update is due, with the date only when it is not today (local time)."""
    lang = _language(language)
    local = _local(due)
    time = f"{local:%H:%M}"
    if local.date() == _local(now or datetime.now(UTC)).date():
        return _NEXT_TODAY[lang].format(time=time)
    date = f"{_DAYS[lang][local.weekday()]} {local.day} {_MONTHS[lang][local.month - 1]}"
    return _NEXT_OTHER_DAY[lang].format(date=date, time=time)


_EXERCISE = {"nl": "[OEFENING]", "en": "[EXERCISE]"}  # a drill must never be mistaken for real


def headline(update: UpdateView, language: str) -> str:
    """The message's headline ("Correctie: Waarschuwing – Hoogwater Maas"); may be empty."""
    return _headline(update, _language(language))


def _headline(update: UpdateView, lang: str) -> str:
    """E.g. "Correctie: Waarschuwing – Hoogwater Maas"; empty parts are left out."""
    severity = None
    if update.severity in _HEADLINE_SEVERITIES and update.kind not in _ALARM_ENDING_KINDS:
        severity = SEVERITY_LABELS[update.severity][lang]
    subject = " – ".join(part for part in (severity, update.incident_title) if part)
    headline = ": ".join(part for part in (kind_label(update.kind, lang), subject) if part)
    return f"{_EXERCISE[lang]} {headline}".strip() if update.exercise else headline


def compose_plain(
    update: UpdateView, language: str, *, title: bool = True, now: datetime | None = None
) -> str:
    """The plain message every channel starts from: headline, body, credit, next update.
    No link: the fit functions add it. ``now`` decides whether the next update is "today"."""
    lang = _language(language)
    footer = []
    if update.credit:
        footer.append(_THANKS[lang].format(credit=update.credit))
    if update.next_update_due:
        footer.append(next_update_line(update.next_update_due, lang, now))
    blocks = (
        headline(update, lang) if title else "",
        update.text(language).strip(),
        "\n".join(footer),
    )
    return "\n\n".join(block for block in blocks if block)


def subject_line(update: UpdateView, language: str) -> str:
    """A mail subject: the headline, always with the severity ("[OEFENING] Correctie:
    Waarschuwing – Hoogwater Maas"); an update that ends the alarm names no alarming one."""
    lang = _language(language)
    severity = None
    if update.kind not in _ALARM_ENDING_KINDS:
        severity = SEVERITY_LABELS.get(update.severity, {}).get(lang)
    subject = " – ".join(part for part in (severity, update.incident_title) if part)
    line = ": ".join(part for part in (kind_label(update.kind, lang), subject) if part)
    return f"{_EXERCISE[lang]} {line}".strip() if update.exercise else line


def thanks_line(credit: str, language: str) -> str:
    return _THANKS[_language(language)].format(credit=credit)
