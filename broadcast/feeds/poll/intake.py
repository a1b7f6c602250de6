"""Store what a poll found that is new, and run the source's rules over it, in one transaction.

New means: a reading whose key (entry id, else a hash of link, title and date, plus the
observation time) or a CAP alert whose sender and identifier this source has not stored before.
Only new readings are evaluated, and each rule remembers how far it evaluated, so a feed that is
read again (after a restart, by another process, or re-published with the same entries) never
fires a rule twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.areas.models import Area
from broadcast.common import stored_id
from broadcast.db import emit
from broadcast.delivery.adapters import ChannelSet
from broadcast.feeds import drafts
from broadcast.feeds.models import FeedAlert, FeedReading, FeedRuleState, FeedSource
from broadcast.feeds.parse.cap import CapAlert
from broadcast.feeds.parse.extract import Extracted
from broadcast.feeds.parse.parsing import Reading
from broadcast.feeds.parse.units import UnitMismatch, convert
from broadcast.feeds.rules import (
    CapRule,
    LevelRule,
    Memory,
    Point,
    RiseRule,
    cap_matches,
    evaluate,
    parse_rules,
)
from broadcast.incidents.models import Incident
from broadcast.timeline.models import Update, UpdateState

log = logging.getLogger(__name__)
MAX_DRAFTS_PER_POLL = 10  # a first poll of a busy CAP index must not bury the console
CHUNK = 500


@dataclass
class Intake:
    new_readings: int = 0
    new_alerts: int = 0
    updates: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ingest(
    session: Session,
    source: FeedSource,
    extracted: Extracted,
    *,
    channels: ChannelSet,
    now: datetime,
    fresh_after: datetime,
) -> Intake:
    intake = Intake(warnings=list(extracted.warnings))
    try:
        rules = parse_rules(source.kind, source.rules, unit=source.unit)
    except Exception as exc:  # stored before a validation rule changed: say so, store readings
        intake.warnings.append(f"rules not evaluated: {exc}")
        rules = []
    if extracted.readings:
        points = _store_readings(session, source, extracted.readings, intake)
        if points:
            _run_level_rules(session, source, rules, points, channels, fresh_after, intake)
    if extracted.alerts:
        alerts = _store_alerts(session, source, extracted.alerts, intake)
        cap_rules = [r for r in rules if isinstance(r, CapRule)]
        _run_cap_rules(session, source, cap_rules, alerts, channels, now, fresh_after, intake)
    return intake


# --- readings ----------------------------------------------------------------------------------


def _store_readings(
    session: Session, source: FeedSource, readings: list[Reading], intake: Intake
) -> list[Point]:
    candidates: dict[str, tuple[Reading, float, str | None]] = {}
    for reading in readings:
        try:
            value, unit = convert(reading.value, reading.unit, source.unit)
        except UnitMismatch as exc:
            intake.warnings.append(f"reading at {reading.observed_at.isoformat()}: {exc}; skipped")
            continue
        candidates.setdefault(digest(reading.key), (reading, value, unit))
    source_id = stored_id(source)
    seen = _existing(session, FeedReading, source_id, list(candidates))
    station = source.name or _host(source.url)
    points = []
    for key_hash, (reading, value, unit) in candidates.items():
        if key_hash in seen:
            continue
        session.add(
            FeedReading(
                source_id=source_id,
                key_hash=key_hash,
                value=value,
                unit=unit,
                observed_at=reading.observed_at,
                station=(reading.station or station)[:120],
            )
        )
        points.append(Point(reading.observed_at, value, unit, source.name or reading.station))
    session.flush()
    intake.new_readings = len(points)
    if points:  # the incident pages' charts show them
        emit(session, "public", feed_id=source.id)
    return points


def _existing(session: Session, table, source_id: int, hashes: list[str]) -> set[str]:
    column = table.key_hash if table is FeedReading else table.identifier_hash
    found: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        chunk = hashes[start : start + CHUNK]
        found.update(
            session.exec(
                select(column).where(table.source_id == source_id, col(column).in_(chunk))
            ).all()
        )
    return found


def _run_level_rules(
    session: Session,
    source: FeedSource,
    rules: list,
    points: list[Point],
    channels: ChannelSet,
    fresh_after: datetime,
    intake: Intake,
) -> None:
    for rule in rules:
        if not isinstance(rule, LevelRule | RiseRule):
            continue
        state = _state(session, stored_id(source), rule.key)
        memory = Memory(state.armed, state.evaluated_until, state.last_fired_at)
        history = _history(session, stored_id(source), rule, points)
        firings = evaluate(rule, memory, points, history, fresh_after=fresh_after)
        state.armed, state.evaluated_until = memory.armed, memory.evaluated_until
        state.last_fired_at = memory.last_fired_at
        if firings and len(intake.updates) < MAX_DRAFTS_PER_POLL:
            last = firings[-1]  # earlier crossings in the same document are history
            station = last.point.station or source.name or _host(source.url)
            update = drafts.draft(
                session,
                source,
                bodies=drafts.level_bodies(
                    rule,
                    station=station,
                    value=last.point.value,
                    unit=last.point.unit,
                    observed_at=last.point.observed_at,
                    rate=last.rate,
                ),
                severity=drafts.severity_for(rule, None),
                title=f"Hoogwater {station}",
                auto_publish=rule.auto_publish,
                channels=channels,
                reason=_fired_reason(rule),
            )
            state.last_update_id, state.fired = update.id, state.fired + 1
            intake.updates.append(stored_id(update))
        session.add(state)
    session.flush()


def _fired_reason(rule: LevelRule | RiseRule) -> str:
    return f"above {rule.above}" if isinstance(rule, LevelRule) else f"rise {rule.rise_cm_per_hour}"


def _state(session: Session, source_id: int, rule_key: str) -> FeedRuleState:
    state = session.exec(
        select(FeedRuleState).where(
            FeedRuleState.source_id == source_id, FeedRuleState.rule_key == rule_key
        )
    ).first()
    if state is None:
        state = FeedRuleState(source_id=source_id, rule_key=rule_key)
        session.add(state)
        session.flush()
    return state


def _history(session: Session, source_id: int, rule, points: list[Point]) -> list[Point]:
    if not isinstance(rule, RiseRule):
        return []
    start = min(p.observed_at for p in points) - timedelta(minutes=rule.window_minutes)
    rows = session.exec(
        select(FeedReading.observed_at, FeedReading.value, FeedReading.unit).where(
            FeedReading.source_id == source_id, col(FeedReading.observed_at) >= start
        )
    ).all()
    return [Point(at, value, unit) for at, value, unit in rows]


def _host(url: str) -> str:
    return urlsplit(url).hostname or "feed"


# --- CAP alerts --------------------------------------------------------------------------------


def _store_alerts(
    session: Session, source: FeedSource, alerts: list[CapAlert], intake: Intake
) -> list[tuple[CapAlert, FeedAlert]]:
    candidates = {digest(f"{a.sender},{a.identifier}"): a for a in alerts}
    source_id = stored_id(source)
    seen = _existing(session, FeedAlert, source_id, list(candidates))
    stored = []
    for key_hash, alert in sorted(candidates.items(), key=lambda item: item[1].sent):
        if key_hash in seen:
            continue
        row = FeedAlert(
            source_id=source_id,
            identifier_hash=key_hash,
            identifier=alert.identifier[:500],
            sender=alert.sender[:200],
            sent=alert.sent,
            status=alert.status[:20],
            msg_type=alert.msg_type[:20],
            event=(alert.event or "")[:200] or None,
            severity=(alert.severity or "")[:20] or None,
            urgency=(alert.urgency or "")[:20] or None,
            certainty=(alert.certainty or "")[:20] or None,
            headline=(alert.headline or "")[:500] or None,
            areas=alert.areas[:50],
            references=alert.references,
            expires=alert.expires,
        )
        session.add(row)
        stored.append((alert, row))
    session.flush()
    intake.new_alerts = len(stored)
    return stored


def _run_cap_rules(
    session: Session,
    source: FeedSource,
    rules: list[CapRule],
    alerts: list[tuple[CapAlert, FeedAlert]],
    channels: ChannelSet,
    now: datetime,
    fresh_after: datetime,
    intake: Intake,
) -> None:
    incident = session.get(Incident, source.incident_id) if source.incident_id else None
    terms = _area_terms(session, incident.areas if incident else source.areas)
    exercise = bool(incident and incident.exercise)
    auto = any(r.auto_publish for r in rules)
    for alert, row in alerts:
        if alert.msg_type in ("Update", "Cancel"):
            _supersede(session, source, alert, row, channels, auto, intake)
        if len(intake.updates) >= MAX_DRAFTS_PER_POLL:
            intake.warnings.append("more alerts matched than drafts are made per poll")
            return
        if alert.expires is None and alert.sent < fresh_after:
            continue
        for rule in rules:
            if cap_matches(
                rule,
                status=alert.status,
                msg_type=alert.msg_type,
                severity=alert.severity,
                areas=alert.areas,
                geocodes=alert.geocodes,
                expires=alert.expires,
                now=now,
                terms=terms,
                exercise=exercise,
            ):
                update = drafts.draft(
                    session,
                    source,
                    bodies=drafts.cap_bodies(
                        rule,
                        sender=alert.sender,
                        event=alert.event,
                        headline=alert.headline,
                        severity=alert.severity,
                        areas=alert.areas,
                        expires=alert.expires,
                        description=alert.description,
                    ),
                    severity=drafts.severity_for(rule, alert.severity),
                    title=alert.event or alert.headline or "Waarschuwing",
                    auto_publish=rule.auto_publish,
                    channels=channels,
                    reason=f"cap {rule.min_severity}",
                )
                row.update_id = update.id
                session.add(row)
                intake.updates.append(stored_id(update))
                break


def _supersede(
    session: Session,
    source: FeedSource,
    alert: CapAlert,
    row: FeedAlert,
    channels: ChannelSet,
    auto_publish: bool,
    intake: Intake,
) -> None:
    """A CAP Update or Cancel replaces the alerts it references: their drafts that nobody
    published yet are withdrawn; a published warning that is cancelled gets a draft saying so."""
    if not alert.references:
        return
    earlier = session.exec(
        select(FeedAlert).where(
            FeedAlert.source_id == source.id,
            col(FeedAlert.identifier).in_(alert.references),
            col(FeedAlert.superseded_by).is_(None),
            FeedAlert.id != row.id,
        )
    ).all()
    for old in earlier:
        old.superseded_by = alert.identifier[:500]
        session.add(old)
        update = session.get(Update, old.update_id) if old.update_id else None
        if update is None:
            continue
        if update.state == UpdateState.draft:
            update.state = UpdateState.rejected
            update.reason = f"superseded by CAP {alert.msg_type} {alert.identifier}"[:500]
            session.add(update)
            audit.record(
                session,
                actor=f"feed:{source.id}",
                action="update.withdraw",
                subject=f"update:{update.id}",
                reason=update.reason,
            )
        elif update.state == UpdateState.published and alert.msg_type == "Cancel":
            notice = drafts.draft(
                session,
                source,
                bodies=drafts.cap_bodies(
                    None,
                    sender=alert.sender or old.sender,
                    event=old.event,
                    headline=old.headline,
                    severity=old.severity,
                    areas=old.areas,
                    expires=None,
                    description=None,
                    cancel=True,
                ),
                severity=update.severity,
                title=old.event or "Waarschuwing",
                auto_publish=auto_publish,
                channels=channels,
                reason="cap cancel",
            )
            row.update_id = notice.id
            session.add(row)
            intake.updates.append(stored_id(notice))
    session.flush()


def _area_terms(session: Session, codes: list[str]) -> list[str]:
    """Names and codes of the areas, which CAP areaDesc texts and geocodes are matched with."""
    if not codes:
        return []
    found = session.exec(select(Area).where(col(Area.code).in_(codes))).all()
    return [term for area in found for term in (area.code, area.name)]
