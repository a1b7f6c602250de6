"""The Dutch catalogue covers every message the code and the templates show."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from broadcast.web.i18n import translator

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("broadcast/**.py", "python"), ("broadcast/web/templates/**.html", "jinja2")]


def extracted() -> set[str]:
    found = extract_from_dir(ROOT, METHODS, keywords={"_": None})
    return {message for _, _, message, _, _ in found if isinstance(message, str) and message}


def test_every_message_has_a_dutch_translation():
    path = ROOT / "broadcast/web/locale/nl/LC_MESSAGES/messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale="nl")
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(extracted() - translated)
    assert len(extracted()) > 100  # the extraction itself works
    assert missing == [], "run the steps in docs/i18n.md to update the catalogue"


def test_named_values_are_filled_in_after_translation():
    assert translator("nl")("promised at %(time)s", time="14:30") == "beloofd om 14:30"
    assert translator("en")("promised at %(time)s", time="14:30") == "promised at 14:30"
    assert translator("xx")("Publish") == "Publiceren"  # unknown languages fall back to Dutch
