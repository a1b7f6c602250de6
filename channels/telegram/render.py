"""Telegram message text: HTML parse mode, headline in bold, cut to the limit with a link.

Pure functions. Lengths are counted on the plain text (Telegram's limits apply after entity
parsing), so the text is fitted first and escaped afterwards.
"""

from __future__ import annotations

import re
from html import unescape

from channels.base import DEFAULT_LANGUAGE, LANGUAGES, Media, Message, UpdateView
from channels.text import (
    TELEGRAM_CAPTION_LIMIT,
    TELEGRAM_MESSAGE_LIMIT,
    compose_plain,
    fit_telegram,
    telegram_escape,
    utf16_len,
)

PARSE_MODE = "HTML"
# What a corrected or retracted original says above its struck-through text.
MARKS: dict[str, dict[str, str]] = {
    "correction": {"nl": "Gecorrigeerd", "en": "Corrected"},
    "retraction": {"nl": "Ingetrokken", "en": "Retracted"},
}
_SEE_BELOW = {"nl": "zie het bericht hieronder", "en": "see the message below"}
_TAGS = re.compile(r"<[^>]+>")


def photo_of(update: UpdateView) -> Media | None:
    """The first image of the update: sent as a photo with the text as its caption."""
    return next((m for m in update.media if m.content_type.startswith("image/")), None)


def render(update: UpdateView, language: str) -> Message:
    photo = photo_of(update)
    limit = TELEGRAM_CAPTION_LIMIT if photo else TELEGRAM_MESSAGE_LIMIT
    full = compose_plain(update, language)
    rest = compose_plain(update, language, title=False)
    headline = full[: len(full) - len(rest)].rstrip("\n") if full != rest else ""
    fitted = fit_telegram(full, update.url, limit)
    return Message(
        update_id=update.id,
        language=language,
        text=bold_headline(fitted.text, headline),
        shortened=fitted.shortened,
        data={"kind": update.kind},
        media=(photo,) if photo else (),
    )


def bold_headline(text: str, headline: str) -> str:
    """Escape ``text``; its first line in bold when it still starts with the whole headline."""
    if not headline or not text.startswith(headline):
        return telegram_escape(text)
    return f"<b>{telegram_escape(headline)}</b>{telegram_escape(text[len(headline) :])}"


def plain_text(html: str) -> str:
    """A rendered message as readers see it: tags removed, entities replaced."""
    return unescape(_TAGS.sub("", html))


def mark_original(
    old_plain: str, old_html: str, kind: str, language: str, *, caption: bool = False
) -> str:
    """The original message after a correction or retraction: labelled and struck through, so
    readers still see what it said (corrected in the open, never silently edited). Marking a
    marked message only swaps the label: a repeated delivery changes nothing."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    label, see = MARKS[kind][lang], _SEE_BELOW[lang]
    head_plain, head = f"{label} ({see})\n", f"<b>{label}</b> ({see})\n"
    if _is_marked(old_plain):  # keep the struck text below the old label
        old_plain = old_plain.partition("\n")[2]
        struck = old_html.partition("\n")[2]
    else:
        struck = f"<s>{old_html}</s>" if old_html else ""
    limit = TELEGRAM_CAPTION_LIMIT if caption else TELEGRAM_MESSAGE_LIMIT
    room = limit - utf16_len(head_plain)
    if utf16_len(old_plain) > room:  # the label made it too long: shorten, drop formatting
        struck = f"<s>{telegram_escape(fit_telegram(old_plain, '', room).text)}</s>"
    return head + struck if struck else head.rstrip("\n")


def _is_marked(plain: str) -> bool:
    return any(
        plain.startswith(f"{label} (") for marks in MARKS.values() for label in marks.values()
    )
