"""The relay kit's texts: one published update, fitted to the places volunteers forward it to.

Pure functions over ``channels.base.UpdateView`` with the shared text helpers. Every format keeps
its headline (with [OEFENING]/[EXERCISE] for exercises and "Correctie" for corrections), the
volunteer's credit and the short link to the update; only the body is shortened to fit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from channels.base import DEFAULT_LANGUAGE, LANGUAGES, UpdateView
from channels.text import (
    AMSTERDAM,
    GSM7_BASIC,
    GSM7_EXTENSION,
    compose_plain,
    fit,
    gsm_friendly,
    next_update_line,
    sms_info,
)

_THANKS = {"nl": "Met dank aan {credit}", "en": "Thanks to {credit}"}
_MORE = {"nl": "Lees meer en volg de updates: {link}", "en": "Read more and follow updates: {link}"}
_CORRECTION = {
    "nl": "Let op: dit corrigeert het eerdere bericht{when}. Deel het waar u dat bericht deelde.",
    "en": "Please note: this corrects the earlier message{when}. Share it wherever you shared "
    "that message.",
}
_WHEN = {"nl": " van {time}", "en": " of {time}"}


@dataclass(frozen=True)
class Format:
    key: str
    label: dict[str, str]
    limit: int
    unit: str  # what ``length`` and ``limit`` count: characters or GSM-7 septets


@dataclass(frozen=True)
class KitText:
    key: str
    label: str
    text: str
    length: int
    limit: int


WHATSAPP = Format("whatsapp", {"nl": "WhatsApp-groep", "en": "WhatsApp group"}, 700, "characters")
FACEBOOK = Format("facebook", {"nl": "Facebook", "en": "Facebook"}, 5000, "characters")
NEIGHBOURHOOD = Format(
    "neighbourhood",
    {"nl": "Buurtapp (Nextdoor, BuurtApp)", "en": "Neighbourhood app (Nextdoor, BuurtApp)"},
    280,
    "characters",
)
SMS = Format("sms", {"nl": "Sms (1 bericht)", "en": "SMS (1 message)"}, 160, "GSM-7 septets")
FORMATS = (WHATSAPP, FACEBOOK, NEIGHBOURHOOD, SMS)
FORMAT_KEYS = tuple(f.key for f in FORMATS)


def build(
    view: UpdateView,
    language: str,
    *,
    corrects_published_at: datetime | None = None,
    now: datetime | None = None,
) -> list[KitText]:
    """Every format for one update in one language. ``corrects_published_at``: when the update
    is a correction, the time of the message it corrects."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    full = compose_plain(view, lang, now=now)
    untitled = compose_plain(view, lang, title=False, now=now)
    headline = full[: len(full) - len(untitled)].strip() if full != untitled else ""
    notice = _correction_notice(view, lang, corrects_published_at)
    credit = _THANKS[lang].format(credit=view.credit) if view.credit else ""
    due = next_update_line(view.next_update_due, lang, now) if view.next_update_due else ""
    body = view.text(lang).strip()
    link = view.url
    whatsapp_head = f"*{_unmark(headline)}*" if headline else ""
    return [
        _fit(WHATSAPP, lang, [whatsapp_head, notice], body, [credit, due, link], len),
        _fit(FACEBOOK, lang, [headline, notice], body, [credit, due, _MORE[lang].format(link=link)],
             len),
        _fit(NEIGHBOURHOOD, lang, [headline], body, [credit, link], len),
        _sms(lang, headline, body, credit, link),
    ]  # fmt: skip


def _fit(
    fmt: Format,
    lang: str,
    head: list[str],
    body: str,
    tail: list[str],
    measure: Callable[[str], int],
    *,
    separator: str = "\n\n",
    ellipsis: str = "…",
) -> KitText:
    """Headline and tail as they are; the body shortened (at a word) to what room is left."""
    head, tail = [p for p in head if p], [p for p in tail if p]
    fixed = measure(separator.join([*head, *tail]))
    room = fmt.limit - fixed - len(separator) * (1 if head or tail else 0)
    fitted = fit(body, room, "", measure=measure, ellipsis=ellipsis).text if room > 0 else ""
    text = separator.join(p for p in [*head, fitted, *tail] if p)
    return KitText(fmt.key, fmt.label[lang], text, measure(text), fmt.limit)


def _sms(lang: str, headline: str, body: str, credit: str, link: str) -> KitText:
    """One GSM-7 segment: typography and accents the alphabet lacks are replaced, so the
    message never switches to UCS-2 (70 characters)."""

    def septets(text: str) -> int:
        return sms_info(text).units

    return _fit(
        SMS,
        lang,
        [to_gsm7(headline)],
        to_gsm7(re.sub(r"\s*\n\s*", " ", body)),
        [to_gsm7(credit), link],
        septets,
        separator="\n",
        ellipsis="...",
    )


_GSM7 = GSM7_BASIC | GSM7_EXTENSION


def to_gsm7(text: str) -> str:
    """Replace what GSM-7 cannot carry: typography by its plain form, accented letters the
    alphabet lacks (ë, ï, ç, ô) by the bare letter; anything else (emoji) is dropped."""
    out = []
    for char in gsm_friendly(text):
        if char in _GSM7:
            out.append(char)
            continue
        bare = unicodedata.normalize("NFKD", char)[:1]
        if bare in _GSM7:
            out.append(bare)
    return re.sub(r"[ ]{2,}", " ", "".join(out))


def _unmark(headline: str) -> str:
    """WhatsApp's bold is *…*: asterisks inside would end it early."""
    return headline.replace("*", "")


def _correction_notice(view: UpdateView, lang: str, corrects: datetime | None) -> str:
    if view.kind != "correction":
        return ""
    when = ""
    if corrects is not None:
        local = corrects.astimezone(AMSTERDAM)
        when = _WHEN[lang].format(time=f"{local.day}-{local.month} {local:%H:%M}")
    return _CORRECTION[lang].format(when=when)
