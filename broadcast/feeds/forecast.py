"""Forecasts of ``rws`` sources: the current run per source, its expected peak, and the
``forecast_peak_above`` rules that draft from it.

Forecast values are never readings: they live in ``feed_forecasts``, one row per source that each
new run replaces. The service's answer names no time of issue that public material documents, so
a run is recognised by its values: the next poll asks for a window that moved on, so an answer
whose values agree with the stored run wherever their times overlap is the same run (its points
are refreshed, ``issued_at`` stays); any difference is a new run, first seen now. Each rule
remembers the run it evaluated and the peak its last draft told, so a re-poll of the same run
never drafts twice, and a new run drafts a follow-up only when the peak moved by more than the
rule's ``follow_up_height`` or ``follow_up_minutes``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from broadcast.common import stored_id
from broadcast.db import emit
from broadcast.delivery.adapters import ChannelSet
from broadcast.feeds import drafts
from broadcast.feeds.models import FeedForecast, FeedRuleState, FeedSource
from broadcast.feeds.parse.rws import Answer
from broadcast.feeds.rules import ForecastPeakRule, parse_rules


@dataclass(frozen=True)
class Peak:
    value: float
    at: datetime


@dataclass
class Outcome:
    new_run: bool = False
    updates: list[int] | None = None


def peak_of(points: list[tuple[datetime, float]]) -> Peak | None:
    """The highest value; of equal values the earliest."""
    if not points:
        return None
    at, value = max(points, key=lambda p: (p[1], -p[0].timestamp()))
    return Peak(value, at)


def _points(row: FeedForecast) -> list[tuple[datetime, float]]:
    return [(datetime.fromisoformat(at), float(value)) for at, value in row.points]


def _same_run(stored: list[tuple[datetime, float]], new: list[tuple[datetime, float]]) -> bool:
    old = dict(stored)
    overlap = [(at, value) for at, value in new if at in old]
    return bool(overlap) and all(old[at] == value for at, value in overlap)


def store(
    session: Session,
    source: FeedSource,
    answer: Answer,
    *,
    channels: ChannelSet,
    now: datetime,
    warnings: list[str],
) -> Outcome:
    """Keep the answer's forecast as the source's current run and run its peak rules."""
    points = [(o.at, o.value) for o in answer.observations]
    peak = peak_of(points)
    if peak is None:  # no forecast in the window (204): the last run stays, shown until it ends
        return Outcome()
    source_id = stored_id(source)
    row = session.exec(select(FeedForecast).where(FeedForecast.source_id == source_id)).first()
    encoded = [[at.isoformat(), value] for at, value in points]
    if row is not None and row.unit == answer.unit and _same_run(_points(row), points):
        row.points, row.peak_value, row.peak_at = encoded, peak.value, peak.at
        session.add(row)
        return Outcome()
    run_hash = hashlib.sha256(json.dumps([answer.unit, encoded]).encode()).hexdigest()
    if row is None:
        row = FeedForecast(
            source_id=source_id,
            run_hash=run_hash,
            issued_at=now,
            unit=answer.unit,
            peak_value=peak.value,
            peak_at=peak.at,
            points=encoded,
        )
    else:
        row.run_hash, row.issued_at, row.unit = run_hash, now, answer.unit
        row.peak_value, row.peak_at, row.points = peak.value, peak.at, encoded
    session.add(row)
    session.flush()
    emit(session, "public", feed_id=source.id)
    updates = _run_rules(session, source, run_hash, peak, answer, channels, now, warnings)
    return Outcome(new_run=True, updates=updates)


def _run_rules(
    session: Session,
    source: FeedSource,
    run_hash: str,
    peak: Peak,
    answer: Answer,
    channels: ChannelSet,
    now: datetime,
    warnings: list[str],
) -> list[int]:
    try:
        rules = parse_rules(source.kind, source.rules, unit=source.unit)
    except Exception as exc:  # stored before a validation rule changed: say so
        warnings.append(f"forecast rules not evaluated: {exc}")
        return []
    station = source.name or answer.station or source.location or "?"
    made: list[int] = []
    for rule in rules:
        if not isinstance(rule, ForecastPeakRule):
            continue
        state = _state(session, stored_id(source), rule.key)
        if state.run_hash == run_hash:
            continue
        state.run_hash = run_hash
        previous = (
            (state.peak_value, state.peak_at)
            if state.peak_value is not None and state.peak_at is not None
            else None
        )
        above = peak.value > rule.forecast_peak_above and peak.at >= now
        if previous is None and not above:
            session.add(state)
            continue
        if previous is not None and not _moved(rule, previous, peak):
            session.add(state)
            continue
        update = drafts.draft(
            session,
            source,
            bodies=drafts.peak_bodies(
                rule,
                station=station,
                value=peak.value,
                at=peak.at,
                unit=answer.unit,
                reference=source.reference,
                previous=previous,
            ),
            severity=drafts.severity_for(rule, None),
            title=f"Hoogwater {station}",
            auto_publish=rule.auto_publish,
            channels=channels,
            reason=f"forecast peak above {rule.forecast_peak_above}"
            + (" (follow-up)" if previous else ""),
        )
        if above:
            state.peak_value, state.peak_at = peak.value, peak.at
        else:  # the expected peak fell below the line: told, and the rule re-arms
            state.peak_value = state.peak_at = None
        state.last_fired_at, state.last_update_id = now, update.id
        state.fired += 1
        session.add(state)
        made.append(stored_id(update))
    session.flush()
    return made


def _moved(rule: ForecastPeakRule, previous: tuple[float, datetime], peak: Peak) -> bool:
    value, at = previous
    shift = abs(peak.at - at)
    return abs(peak.value - value) > rule.follow_up_height or shift > timedelta(
        minutes=rule.follow_up_minutes
    )


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


def current(session: Session, source_id: int, *, now: datetime) -> dict | None:
    """``{"issued_at", "peak": {"value", "unit", "at"}, "points": [{"value", "at"}]}`` of the
    source's current run, or None (none, or every point of it lies in the past)."""
    row = session.exec(select(FeedForecast).where(FeedForecast.source_id == source_id)).first()
    if row is None:
        return None
    points = _points(row)
    if not points or points[-1][0] < now:
        return None
    return {
        "issued_at": row.issued_at,
        "peak": {"value": row.peak_value, "unit": row.unit, "at": row.peak_at},
        "points": [{"value": value, "at": at} for at, value in points],
    }
