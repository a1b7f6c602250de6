"""Feed sources: add, change, remove (from the API or the settings file), and their readings.

Services add and flush; the caller's unit of work commits. Every change is audited and emits a
``feeds`` event, on which the scheduler's leader brings its poll jobs in line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, delete, select

from broadcast import audit
from broadcast.areas import service as areas
from broadcast.auth.models import User
from broadcast.common import stored_id, utcnow
from broadcast.db import emit
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.feeds import forecast as forecasts
from broadcast.feeds.models import (
    FeedAlert,
    FeedForecast,
    FeedKind,
    FeedReading,
    FeedRuleState,
    FeedSource,
)
from broadcast.feeds.rules import ForecastPeakRule, LevelRule, parse_rules
from broadcast.incidents.models import Incident
from channels.netguard import PrivateAddress, check_url

log = logging.getLogger(__name__)
MAX_INTERVAL_SECONDS = 86_400
FIELDS = (
    "name", "url", "kind", "interval_seconds", "enabled", "incident_id", "areas", "unit",
    "value_pattern", "items_path", "value_path", "time_path", "location", "quantity",
    "reference", "rules",
)  # fmt: skip
LOCATION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")  # "venlo", "ameland.nes"
AQUO_CODE = re.compile(r"^[A-Za-z0-9%_/.-]{1,30}$")  # "WATHTE", "NAP", "H1/3"


def get(session: Session, source_id: int) -> FeedSource:
    source = session.get(FeedSource, source_id)
    if source is None:
        raise NotFound(f"feed {source_id} not found")
    return source


def listing(session: Session) -> list[FeedSource]:
    return list(session.exec(select(FeedSource).order_by(col(FeedSource.id))))


def create(
    session: Session,
    *,
    min_interval: int,
    allow_private: bool = False,
    creator: User | None = None,
    config_name: str | None = None,
    **values: Any,
) -> FeedSource:
    defaults = {"areas": [], "rules": [], "enabled": True}
    checked = check(session, defaults | values, min_interval, allow_private=allow_private)
    source = FeedSource(
        **checked, config_name=config_name, created_by=creator.id if creator else None
    )
    session.add(source)
    session.flush()
    audit.record(
        session,
        actor=creator.name if creator else "config",
        actor_id=creator.id if creator else None,
        action="feed.create",
        subject=f"feed:{source.id}",
        kind=source.kind,
        host=urlsplit(source.url).hostname,
    )
    emit(session, "feeds", feed_id=source.id)
    return source


def change(
    session: Session,
    source: FeedSource,
    changes: dict[str, Any],
    *,
    min_interval: int,
    allow_private: bool = False,
    actor: User | None = None,
) -> FeedSource:
    if source.config_name is not None and actor is not None:
        raise Conflict(f"feed {source.id} is defined in the settings file; change it there")
    current = {name: getattr(source, name) for name in FIELDS}
    checked = check(session, current | changes, min_interval, allow_private=allow_private)
    changed = sorted(name for name in FIELDS if checked[name] != current[name])
    for name in changed:
        setattr(source, name, checked[name])
    if {"url", "kind"} & set(changed):  # another document: what the old server said is moot
        source.etag = source.last_modified = None
    session.add(source)
    if changed:
        audit.record(
            session,
            actor=actor.name if actor else "config",
            actor_id=actor.id if actor else None,
            action="feed.change",
            subject=f"feed:{source.id}",
            fields=changed,
        )
        emit(session, "feeds", feed_id=source.id)
    return source


def remove(session: Session, source: FeedSource, *, actor: User) -> None:
    """The source, its readings, seen alerts and rule memory go; updates it made stay."""
    if source.config_name is not None:
        raise Conflict(f"feed {source.id} is defined in the settings file; remove it there")
    for table in (FeedReading, FeedAlert, FeedRuleState, FeedForecast):
        session.exec(delete(table).where(col(table.source_id) == source.id))
    session.delete(source)
    audit.record(
        session,
        actor=actor.name,
        actor_id=actor.id,
        action="feed.delete",
        subject=f"feed:{source.id}",
    )
    emit(session, "feeds", feed_id=source.id)
    session.flush()


def check(
    session: Session, values: dict[str, Any], min_interval: int, *, allow_private: bool = False
) -> dict[str, Any]:
    """The complete, validated field values of a source; ``Invalid`` (422) says what is wrong.
    A URL on a non-public address is refused unless ``allow_private`` (it would also be refused
    at every poll)."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {name: values.get(name) for name in FIELDS}
    out["url"] = _check_url(str(out["url"] or ""), allow_private)
    try:
        out["kind"] = FeedKind(out["kind"])
    except ValueError:
        raise Invalid("kind must be level, cap, json or rws") from None
    interval = out["interval_seconds"]
    if not isinstance(interval, int) or not min_interval <= interval <= MAX_INTERVAL_SECONDS:
        raise Invalid(
            f"interval_seconds must be a whole number from {min_interval} to {MAX_INTERVAL_SECONDS}"
        )
    out["enabled"] = bool(True if out["enabled"] is None else out["enabled"])
    if out["incident_id"] is not None and session.get(Incident, out["incident_id"]) is None:
        raise Invalid(f"incident {out['incident_id']} not found")
    out["areas"] = areas.check_codes(session, out["areas"] or [])
    if out["name"] is not None:
        out["name"] = str(out["name"]).strip()[:120] or None
    for name, limit in (("unit", 30), ("items_path", 200), ("value_path", 200), ("time_path", 200)):
        if out[name] is not None and len(str(out[name])) > limit:
            raise Invalid(f"{name} is longer than {limit} characters")
    _check_kind_fields(out)
    out["rules"] = list(out["rules"] or [])
    parse_rules(out["kind"], out["rules"], unit=out["unit"])
    return out


def _check_url(url: str, allow_private: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http or https URL")
    if len(url) > 2000:
        raise Invalid("url is longer than 2000 characters")
    if not allow_private:
        try:
            check_url(url.strip())
        except PrivateAddress as exc:
            raise Invalid(f"url {exc} (BROADCAST_FEED_ALLOW_PRIVATE_ADDRESSES)") from None
    return url.strip()


def _check_kind_fields(out: dict[str, Any]) -> None:
    kind = out["kind"]
    if out["value_pattern"] is not None:
        if kind != FeedKind.level:
            raise Invalid("value_pattern is for level sources")
        if len(out["value_pattern"]) > 500:
            raise Invalid("value_pattern is longer than 500 characters")
        try:
            re.compile(out["value_pattern"])
        except re.error as exc:
            raise Invalid(f"value_pattern is not a regular expression: {exc}") from None
    json_paths = ("items_path", "value_path", "time_path")
    if kind == FeedKind.json:
        if out["items_path"] is None or not out["value_path"] or not out["time_path"]:
            raise Invalid("a json source needs items_path, value_path and time_path")
    elif any(out[name] for name in json_paths):
        raise Invalid("items_path, value_path and time_path are for json sources")
    rws_fields = ("location", "quantity", "reference")
    if kind == FeedKind.rws:
        location = str(out["location"] or "").strip()
        if not LOCATION.match(location):
            raise Invalid(
                "an rws source needs a location: Rijkswaterstaat's location code in lower case, "
                'e.g. "venlo" (OphalenCatalogus lists them)'
            )
        out["location"] = location
        out["quantity"] = str(out["quantity"] or "WATHTE").strip()
        out["reference"] = str(out["reference"] or "NAP").strip()
        for name in ("quantity", "reference"):
            if not AQUO_CODE.match(out[name]):
                raise Invalid(f'{name} must be an Aquo code such as "WATHTE" or "NAP"')
        if out["unit"] is not None:
            raise Invalid("an rws source takes its unit from the service (cm for WATHTE)")
    elif any(out[name] for name in rws_fields):
        raise Invalid("location, quantity and reference are for rws sources")


# --- readings ----------------------------------------------------------------------------------


def readings(
    session: Session, source_id: int, *, limit: int = 500, since: datetime | None = None
) -> list[FeedReading]:
    """Newest first."""
    query = select(FeedReading).where(FeedReading.source_id == source_id)
    if since is not None:
        query = query.where(col(FeedReading.observed_at) >= since)
    query = query.order_by(col(FeedReading.observed_at).desc(), col(FeedReading.id).desc())
    return list(session.exec(query.limit(limit)))


def latest(session: Session, source_id: int) -> FeedReading | None:
    found = readings(session, source_id, limit=1)
    return found[0] if found else None


def alerts(session: Session, source_id: int, *, limit: int = 100) -> list[FeedAlert]:
    query = select(FeedAlert).where(FeedAlert.source_id == source_id)
    return list(session.exec(query.order_by(col(FeedAlert.sent).desc()).limit(limit)))


def level_sources_for(session: Session, incident_id: int) -> list[FeedSource]:
    return list(
        session.exec(
            select(FeedSource)
            .where(
                FeedSource.incident_id == incident_id,
                col(FeedSource.kind).in_([FeedKind.level, FeedKind.json, FeedKind.rws]),
            )
            .order_by(col(FeedSource.id))
        )
    )


@dataclass(frozen=True)
class Series:
    """One source's readings over a period, as the public page draws them."""

    key: str  # unique on the page (ids of the SVG's title and description)
    station: str
    unit: str | None
    points: list[tuple[datetime, float]]  # oldest first
    thresholds: list[float] = field(default_factory=list)
    # rws: the current forecast run (after now, oldest first, never readings) and its peak
    forecast: list[tuple[datetime, float]] = field(default_factory=list)
    peak: tuple[datetime, float] | None = None
    reference: str | None = None  # "NAP": the peak is told in m NAP


def chart_series(
    session: Session, incident_id: int, *, since: datetime, now: datetime | None = None
) -> list[Series]:
    """The level of each gauge that feeds the incident, since ``since``, with the ``above`` (and
    ``forecast_peak_above``) thresholds of its rules and, for rws sources, the forecast after
    ``now``; gauges with neither readings in the period nor a forecast are left out."""
    now = now or utcnow()
    found = []
    for source in level_sources_for(session, incident_id):
        rows = list(reversed(readings(session, stored_id(source), limit=5000, since=since)))
        run = forecasts.current(session, stored_id(source), now=now)
        if not rows and run is None:
            continue
        unit = rows[-1].unit if rows else run["peak"]["unit"] if run else None
        points = [(r.observed_at, r.value) for r in rows if r.unit == unit]
        try:
            rules = parse_rules(source.kind, source.rules, unit=source.unit)
        except Invalid:
            rules = []
        thresholds = sorted(
            {r.above for r in rules if isinstance(r, LevelRule)}
            | {r.forecast_peak_above for r in rules if isinstance(r, ForecastPeakRule)}
        )
        ahead: list[tuple[datetime, float]] = []
        peak = None
        if run is not None and run["peak"]["unit"] == unit:
            ahead = [(p["at"], p["value"]) for p in run["points"] if p["at"] >= now]
            if run["peak"]["at"] >= now:
                peak = (run["peak"]["at"], run["peak"]["value"])
        station = source.name or (rows[-1].station if rows else None) or f"feed {source.id}"
        found.append(
            Series(
                str(source.id),
                station,
                unit,
                points,
                thresholds,
                forecast=ahead,
                peak=peak,
                reference=source.reference,
            )
        )
    return found


# --- the settings file -------------------------------------------------------------------------


def sync_config(
    session: Session,
    entries: list[dict[str, Any]],
    *,
    min_interval: int,
    allow_private: bool = False,
) -> list[str]:
    """Sources of ``[[feeds]]`` tables, matched by ``name``: added, changed, and disabled when
    they left the file (their readings stay). A faulty entry is skipped with a logged reason,
    so a typo in one feed never keeps the service from starting; the reasons are returned."""
    problems: list[str] = []
    seen: set[str] = set()
    existing = {
        s.config_name: s
        for s in session.exec(select(FeedSource).where(col(FeedSource.config_name).is_not(None)))
    }
    for index, entry in enumerate(entries):
        name = str(entry.get("name") or "").strip()
        if not name:
            problems.append(f"feeds[{index}]: a feed in the settings file needs a name")
            continue
        if name in seen:
            problems.append(f"feeds[{index}]: the name {name!r} is used twice")
            continue
        seen.add(name)
        values = {k: v for k, v in entry.items() if k in FIELDS}
        values.setdefault("enabled", True)
        try:
            with session.begin_nested():
                if name in existing:
                    change(
                        session,
                        existing[name],
                        values,
                        min_interval=min_interval,
                        allow_private=allow_private,
                    )
                else:
                    create(
                        session,
                        config_name=name,
                        min_interval=min_interval,
                        allow_private=allow_private,
                        **values,
                    )
        except (Invalid, NotFound, TypeError) as exc:
            problems.append(f"feeds[{index}] {name!r}: {exc}")
    for config_name, source in existing.items():
        if config_name not in seen and source.enabled:
            source.enabled = False
            session.add(source)
            subject = f"feed:{source.id}"
            audit.record(session, actor="config", action="feed.disable", subject=subject)
            emit(session, "feeds", feed_id=source.id)
    for problem in problems:
        log.error("feed in the settings file skipped: %s", problem)
    return problems
