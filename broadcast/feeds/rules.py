"""Rules of a feed source, and their evaluation as pure functions over readings and alerts.

Three kinds, told apart by their keys:
- ``{"above": X, "reset_below": Y}``: the level rose above X. Hysteresis: after firing the rule
  waits until a reading below Y (default X) before it can fire again, so a gauge that hovers at
  the line makes one draft, not one per reading.
- ``{"rise_cm_per_hour": R, "window_minutes": 180}``: the level rose faster than R cm per hour
  over the window; re-armed when the rate fell below ``reset_below`` (default R / 2).
- ``{"forecast_peak_above": X}`` (rws sources): a forecast run expects a peak above X; a later
  run that moves the peak by more than ``follow_up_height`` or ``follow_up_minutes`` gets a
  follow-up (see ``broadcast.feeds.forecast``).
- ``{"min_severity": "Severe"}``: a CAP alert at or above that severity (CAP words, or ours:
  info, advisory, warning, emergency) for the incident's areas (or the rule's ``areas``).

Each may say ``severity`` (of the update), ``auto_publish`` (default false: a draft waits for an
officer), ``template`` ({"nl", "en"} with {placeholders}) and, for levels, ``cooldown_minutes``:
the least time between two drafts of one rule even when the level fell and rose again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from broadcast.common import Code, PlainText, Severity
from broadcast.errors import Invalid
from broadcast.feeds.parse.units import to_centimetres

CAP_SEVERITIES = ("Unknown", "Minor", "Moderate", "Severe", "Extreme")
OURS_TO_CAP = {
    Severity.info: "Minor",
    Severity.advisory: "Moderate",
    Severity.warning: "Severe",
    Severity.emergency: "Extreme",
}
CAP_TO_OURS = {cap: ours for ours, cap in OURS_TO_CAP.items()} | {"Unknown": Severity.info}
MIN_RATE_SPAN = timedelta(minutes=15)  # a rate over a shorter span is noise
PLACEHOLDER = re.compile(r"\{(\w+)\}")

Template = dict[
    Annotated[str, Field(pattern="^(nl|en)$")],
    Annotated[PlainText, Field(min_length=1, max_length=2000)],
]


def cap_rank(severity: str | None) -> int:
    """0 (Unknown) to 4 (Extreme); our own words map onto the CAP scale."""
    word = (severity or "").strip()
    if word.capitalize() in CAP_SEVERITIES:
        return CAP_SEVERITIES.index(word.capitalize())
    if word in set(Severity):
        return CAP_SEVERITIES.index(OURS_TO_CAP[Severity(word)])
    return 0


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Severity | None = None
    auto_publish: bool = False
    template: Template | None = None

    @property
    def key(self) -> str:
        """Stable identity of the rule's memory: a changed rule starts afresh."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class LevelRule(_Rule):
    above: float
    reset_below: float | None = None
    cooldown_minutes: float = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _reset_not_above(self) -> LevelRule:
        if self.reset_below is not None and self.reset_below > self.above:
            raise ValueError("reset_below must not be above 'above'")
        return self

    @property
    def rearm_below(self) -> float:
        return self.above if self.reset_below is None else self.reset_below


class RiseRule(_Rule):
    rise_cm_per_hour: float = Field(gt=0)
    window_minutes: float = Field(default=180, ge=15, le=7 * 24 * 60)
    reset_below: float | None = Field(default=None, ge=0)
    cooldown_minutes: float = Field(default=60, ge=0)

    @property
    def rearm_below(self) -> float:
        return self.rise_cm_per_hour / 2 if self.reset_below is None else self.reset_below


class ForecastPeakRule(_Rule):
    """rws sources: the expected peak of a forecast run is above X (in the source's unit). A
    later run whose peak moved by more than ``follow_up_height`` (same unit) or
    ``follow_up_minutes`` gets a follow-up; each run is evaluated once."""

    forecast_peak_above: float
    follow_up_height: float = Field(default=10, gt=0)
    follow_up_minutes: float = Field(default=120, gt=0)


class CapRule(_Rule):
    min_severity: str
    areas: list[Code] | None = None

    @field_validator("min_severity")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CAP_SEVERITIES[1:] and value not in set(Severity):
            raise ValueError(
                "min_severity must be Minor, Moderate, Severe or Extreme "
                "(or info, advisory, warning, emergency)"
            )
        return value


Rule = LevelRule | RiseRule | CapRule | ForecastPeakRule
TEMPLATE_FIELDS = {
    ForecastPeakRule: {"station", "value", "unit", "time", "above", "previous", "previous_time"},
    LevelRule: {"station", "value", "unit", "time", "above", "reset_below"},
    RiseRule: {"station", "value", "unit", "time", "rate", "window_hours"},
    CapRule: {"sender", "event", "headline", "severity", "areas", "expires", "description"},
}


def parse_rules(kind: str, raw: list[dict[str, Any]], *, unit: str | None) -> list[Rule]:
    """Validate a source's rules for its kind; ``Invalid`` (422) names the rule and the fault."""
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise Invalid(f"rules[{index}]: a rule is an object")
        model = _model_for(kind, item, index)
        try:
            rule = model.model_validate(item)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise Invalid(f"rules[{index}]: {reasons}") from None
        if isinstance(rule, RiseRule) and not (unit and to_centimetres(1, unit) is not None):
            raise Invalid(f"rules[{index}]: a rate-of-rise rule needs a length unit (cm, m, ft)")
        if rule.template is not None:
            _check_template(rule.template, TEMPLATE_FIELDS[model], index)
        rules.append(rule)
    return rules


def _model_for(kind: str, item: dict[str, Any], index: int) -> type[Rule]:
    if kind == "cap":
        if "min_severity" not in item:
            raise Invalid(f"rules[{index}]: a CAP source's rule needs min_severity")
        return CapRule
    if "forecast_peak_above" in item:
        if kind != "rws":
            raise Invalid(f"rules[{index}]: forecast_peak_above is for rws sources")
        return ForecastPeakRule
    if "above" in item:
        return LevelRule
    if "rise_cm_per_hour" in item:
        return RiseRule
    more = " or 'forecast_peak_above'" if kind == "rws" else ""
    raise Invalid(f"rules[{index}]: a level rule needs 'above' or 'rise_cm_per_hour'{more}")


def _check_template(template: dict[str, str], allowed: set[str], index: int) -> None:
    for language, text in template.items():
        unknown = set(PLACEHOLDER.findall(text)) - allowed
        if unknown:
            raise Invalid(
                f"rules[{index}].template.{language}: unknown placeholder(s) "
                f"{', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}"
            )


def fill(text: str, values: dict[str, str]) -> str:
    """``{name}`` replaced by its value; nothing else is interpreted (no attribute access)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class Memory:
    armed: bool = True
    evaluated_until: datetime | None = None
    last_fired_at: datetime | None = None


@dataclass(frozen=True)
class Point:
    observed_at: datetime
    value: float
    unit: str | None
    station: str | None = None


@dataclass(frozen=True)
class Firing:
    point: Point
    rate: float | None = None  # cm per hour, for rise rules


def evaluate(
    rule: LevelRule | RiseRule,
    memory: Memory,
    new: list[Point],
    history: list[Point],
    *,
    fresh_after: datetime,
) -> list[Firing]:
    """Walk the new readings in time order, updating ``memory``; the firings, oldest first.

    Readings at or before ``memory.evaluated_until`` (a late entry) are not evaluated again.
    A reading older than ``fresh_after`` can re-arm a rule but never fires it: a feed's history
    is not news. A crossing during the cooldown does not fire and leaves the rule armed, so the
    first reading above the line after the cooldown does.
    """
    firings = []
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    for point in sorted(new, key=lambda p: p.observed_at):
        if memory.evaluated_until is not None and point.observed_at <= memory.evaluated_until:
            continue
        memory.evaluated_until = point.observed_at
        measure = _measure(rule, point, history)
        if measure is None:
            continue
        threshold = rule.above if isinstance(rule, LevelRule) else rule.rise_cm_per_hour
        if not memory.armed:
            if measure < rule.rearm_below:
                memory.armed = True
            continue
        if measure <= threshold or point.observed_at < fresh_after:
            continue
        if memory.last_fired_at is not None and point.observed_at - memory.last_fired_at < cooldown:
            continue
        memory.armed, memory.last_fired_at = False, point.observed_at
        rate = measure if isinstance(rule, RiseRule) else None
        firings.append(Firing(point, rate))
    return firings


def _measure(rule: LevelRule | RiseRule, point: Point, history: list[Point]) -> float | None:
    if isinstance(rule, LevelRule):
        return point.value
    return rise_per_hour(point, history, timedelta(minutes=rule.window_minutes))


def rise_per_hour(point: Point, history: list[Point], window: timedelta) -> float | None:
    """cm per hour from the earliest reading in the window before ``point`` to ``point``."""
    start = point.observed_at - window
    earlier = [h for h in history if start <= h.observed_at < point.observed_at]
    if not earlier:
        return None
    first = min(earlier, key=lambda h: h.observed_at)
    span = point.observed_at - first.observed_at
    now_cm = to_centimetres(point.value, point.unit)
    then_cm = to_centimetres(first.value, first.unit)
    if span < MIN_RATE_SPAN or now_cm is None or then_cm is None:
        return None
    return (now_cm - then_cm) / (span.total_seconds() / 3600)


def cap_matches(
    rule: CapRule,
    *,
    status: str,
    msg_type: str,
    severity: str | None,
    areas: list[str],
    geocodes: list[tuple[str, str]],
    expires: datetime | None,
    now: datetime,
    terms: list[str],
    exercise: bool = False,
) -> bool:
    """An Alert or Update, Actual (Exercise for an exercise incident), not expired, severe
    enough, and for one of the areas (no area terms at all: the whole feed is relevant)."""
    wanted_status = "Exercise" if exercise else "Actual"
    if status != wanted_status or msg_type not in ("Alert", "Update"):
        return False
    if expires is not None and expires <= now:
        return False
    if cap_rank(severity) < cap_rank(rule.min_severity):
        return False
    return area_match(rule.areas if rule.areas is not None else terms, areas, geocodes)


def area_match(terms: list[str], areas: list[str], geocodes: list[tuple[str, str]]) -> bool:
    if not terms:
        return True
    codes = {value.casefold() for _, value in geocodes}
    for term in terms:
        folded = term.casefold().strip()
        if not folded:
            continue
        if folded in codes:
            return True
        pattern = re.compile(rf"(?<!\w){re.escape(folded)}(?!\w)")
        if any(pattern.search(area.casefold()) for area in areas):
            return True
    return False
