"""Blanks left from a message template (``[weg]``, ``[phone number]``): never published.

The templates of ``config/templates.toml`` mark what an adviser must fill in with square
brackets. An update that still holds one cannot be published or scheduled; a draft may.
"""

from __future__ import annotations

import re

from broadcast.errors import Invalid
from broadcast.i18n import _

# One to four words in square brackets, as the template library writes its blanks.
PLACEHOLDER = re.compile(r"\[(\w+(?: \w+){0,3})\]")


def unfilled(bodies: dict[str, str]) -> list[str]:
    """The placeholder names still in the texts, each once, in the order they appear."""
    found = (m.group(1) for text in bodies.values() for m in PLACEHOLDER.finditer(text))
    return list(dict.fromkeys(found))


class UnfilledPlaceholders(Invalid):
    """422 naming the blanks; the API adds them as ``placeholders``."""

    def __init__(self, names: list[str]):
        super().__init__(
            _("fill in the template's blanks first: %(names)s"),
            names=", ".join(f"[{name}]" for name in names),
        )
        self.extra = {"placeholders": names}


def check_filled(bodies: dict[str, str]) -> None:
    if names := unfilled(bodies):
        raise UnfilledPlaceholders(names)
