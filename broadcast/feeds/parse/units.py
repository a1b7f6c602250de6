"""Units of readings: a base unit ("cm", "m", "ft", "m3/s") and, for levels, a vertical datum
("NAP", "TAW"). Lengths convert into the unit a source is configured with; anything else must
match it exactly, so a discharge in m³/s is never compared with a level threshold in cm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LENGTHS_IN_METRES = {"mm": 0.001, "cm": 0.01, "dm": 0.1, "m": 1.0, "km": 1000.0, "ft": 0.3048}
_ALIASES = {"m³/s": "m3/s", "bft": "Bft"}


class UnitMismatch(ValueError):
    """A reading whose unit cannot be expressed in the source's unit."""


@dataclass(frozen=True)
class Unit:
    base: str
    datum: str | None = None

    @property
    def is_length(self) -> bool:
        return self.base in LENGTHS_IN_METRES

    def __str__(self) -> str:
        return f"{self.base} {self.datum}" if self.datum else self.base


def parse_unit(text: str | None) -> Unit | None:
    """ "12,47 m NAP" style units as the parser reports them: "m NAP", "cm t.o.v. NAP", "m +NAP"."""
    if not text or not text.strip():
        return None
    base, _, rest = text.strip().partition(" ")
    base = _ALIASES.get(base, base)
    datum = re.sub(r"^[+\s]*(t\.o\.v\.\s*)?", "", rest).strip() or None
    return Unit(base, datum.upper() if datum else None)


def convert(value: float, unit: str | None, target: str | None) -> tuple[float, str | None]:
    """``value`` in ``unit`` expressed in ``target`` (the source's configured unit).

    No target: the value as read. No unit in the text: it is taken to be the target.
    """
    into = parse_unit(target)
    if into is None:
        return value, unit
    found = parse_unit(unit)
    if found is None:
        return value, str(into)
    if found.datum and into.datum and found.datum != into.datum:
        raise UnitMismatch(f"datum {found.datum} is not the configured {into.datum}")
    if found.base == into.base:
        return value, str(into)
    if found.is_length and into.is_length:
        factor = LENGTHS_IN_METRES[found.base] / LENGTHS_IN_METRES[into.base]
        return round(value * factor, 6), str(into)
    raise UnitMismatch(f"unit {unit!r} cannot be converted to the configured {target!r}")


def to_centimetres(value: float, unit: str | None) -> float | None:
    """A length in cm (rate-of-rise rules speak cm per hour); None for a non-length."""
    found = parse_unit(unit)
    if found is None or not found.is_length:
        return None
    return value * LENGTHS_IN_METRES[found.base] * 100


def is_length(unit: str | None) -> bool:
    found = parse_unit(unit)
    return found is not None and found.is_length
