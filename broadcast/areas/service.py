"""Areas come from a TOML file; the database keeps a copy so subscriptions can reference them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlmodel import Session, col, select

from broadcast.areas.models import Area
from broadcast.errors import Invalid
from broadcast.i18n import _
from broadcast.settings import read_toml


def load_file(path: Path) -> list[Area]:
    entries = read_toml(path).get("area", [])
    return [
        Area(
            code=e["code"],
            name=e["name"],
            parent=e.get("parent"),
            postcodes=[str(p) for p in e.get("postcodes", [])],
            geojson=e.get("geojson"),
        )
        for e in entries
    ]


def sync(session: Session, areas: list[Area]) -> None:
    """Insert or update the configured areas (parents first, so foreign keys hold)."""
    for area in sorted(areas, key=lambda a: a.parent is not None):
        existing = session.get(Area, area.code)
        if existing is None:
            session.add(area)
        else:
            existing.name, existing.parent = area.name, area.parent
            existing.postcodes, existing.geojson = area.postcodes, area.geojson
        session.flush()


def all_areas(session: Session) -> list[Area]:
    return list(session.exec(select(Area).order_by(col(Area.parent).is_not(None), Area.name)))


def check_codes(session: Session, codes: Iterable[str]) -> list[str]:
    codes = list(dict.fromkeys(codes))
    query = select(Area).where(col(Area.code).in_(codes))
    known = {a.code for a in session.exec(query)} if codes else set()
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Invalid(_("unknown area(s): %(areas)s"), areas=", ".join(unknown))
    return codes


def related(session: Session, codes: Iterable[str]) -> list[str]:
    """The areas themselves with their ancestors and descendants: an update for Mook reaches the
    subscribers of the whole municipality, an update for the municipality reaches Mook's."""
    parents = {a.code: a.parent for a in session.exec(select(Area))}
    descendants = set(codes)
    while grown := {c for c, p in parents.items() if p in descendants} - descendants:
        descendants |= grown
    ancestors = set()
    for code in codes:
        parent = parents.get(code)
        while parent is not None:
            ancestors.add(parent)
            parent = parents.get(parent)
    return sorted(descendants | ancestors)


def for_postcode(session: Session, postcode: str) -> Area | None:
    """The most specific area whose PC4 list holds the postcode ("6585 AB" → Mook)."""
    pc4 = "".join(ch for ch in postcode if ch.isdigit())[:4]
    if len(pc4) != 4:
        return None
    matches = [a for a in session.exec(select(Area)) if pc4 in a.postcodes]
    return matches[0] if matches else None
