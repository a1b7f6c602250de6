"""What a firing rule writes: an update in Dutch and English from a template filled with the value,
the station and the time (Europe/Amsterdam), on the source's incident (or a new one). A draft
waits for an officer; only a rule with ``auto_publish`` publishes, through the timeline's own
``post``, so a draft never reaches the outbox."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal
from sqlmodel import Session

from broadcast import audit
from broadcast.common import Severity
from broadcast.delivery.adapters import ChannelSet
from broadcast.feeds.models import FeedSource
from broadcast.feeds.rules import CAP_TO_OURS, CapRule, ForecastPeakRule, LevelRule, RiseRule, fill
from broadcast.i18n import LANGUAGES
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Source, Update

log = logging.getLogger(__name__)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

TEMPLATES = {
    "above": {
        "nl": "Waterstand {station}: {value} {unit} om {time}. Dat is boven de signaalwaarde van "
        "{above} {unit}. We houden de situatie in de gaten en melden het als er iets verandert.",
        "en": "Water level at {station}: {value} {unit} at {time}, above the alert level of "
        "{above} {unit}. We are monitoring the situation and will tell you when anything changes.",
    },
    "rise": {
        "nl": "Het water bij {station} stijgt snel: {rate} cm per uur over de afgelopen "
        "{window_hours} uur (nu {value} {unit}, om {time}). We houden de situatie in de gaten.",
        "en": "The water at {station} is rising fast: {rate} cm per hour over the last "
        "{window_hours} hours (now {value} {unit}, at {time}). We are monitoring the situation.",
    },
    "peak": {
        "nl": "Verwachte hoogste stand bij {station}: {value} {unit}, {time}. Dat is boven de "
        "signaalwaarde van {above} {unit}. We houden de situatie in de gaten en melden het als "
        "de verwachting verandert.",
        "en": "Expected peak at {station}: {value} {unit}, {time}. That is above the alert level "
        "of {above} {unit}. We are monitoring the situation and will tell you when the forecast "
        "changes.",
    },
    "peak_follow_up": {
        "nl": "Nieuwe verwachting voor {station}: hoogste stand {value} {unit}, {time} (eerder "
        "verwacht: {previous} {unit}, {previous_time}).",
        "en": "New forecast for {station}: peak {value} {unit}, {time} (previously expected: "
        "{previous} {unit}, {previous_time}).",
    },
    "cap": {
        "nl": "Waarschuwing van {sender}: {headline} (ernst: {severity}; gebied: {areas}; "
        "geldig tot {expires}).",
        "en": "Warning from {sender}: {headline} (severity: {severity}; area: {areas}; "
        "valid until {expires}).",
    },
    "cap_cancel": {
        "nl": "{sender} heeft de waarschuwing ingetrokken: {headline}.",
        "en": "{sender} has cancelled the warning: {headline}.",
    },
}
UNKNOWN = {"nl": "onbekend", "en": "unknown"}


def number(value: float, language: str) -> str:
    """12.47 -> "12,47" in Dutch; whole numbers without decimals; at most two decimals."""
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "nl" else text


def local(moment: datetime | None, language: str) -> str:
    if moment is None:
        return UNKNOWN[language]
    return moment.astimezone(AMSTERDAM).strftime("%d-%m-%Y %H:%M")


def level_bodies(
    rule: LevelRule | RiseRule,
    *,
    station: str,
    value: float,
    unit: str | None,
    observed_at: datetime,
    rate: float | None = None,
) -> dict[str, str]:
    bodies = {}
    for language in LANGUAGES:
        values = {
            "station": station,
            "value": number(value, language),
            "unit": unit or "",
            "time": local(observed_at, language),
        }
        if isinstance(rule, LevelRule):
            values["above"] = number(rule.above, language)
            values["reset_below"] = number(rule.rearm_below, language)
            default = TEMPLATES["above"]
        else:
            values["rate"] = number(rate or 0.0, language)
            values["window_hours"] = number(rule.window_minutes / 60, language)
            default = TEMPLATES["rise"]
        template = (rule.template or {}).get(language) or default[language]
        bodies[language] = " ".join(fill(template, values).split())
    return bodies


def height(value: float, unit: str | None, reference: str | None, language: str) -> tuple[str, str]:
    """The value and unit as residents read them: a water level the service gives in cm against
    NAP in metres with two decimals ("15,10", "m NAP"); anything else as it is."""
    locale = "nl_NL" if language == "nl" else "en_GB"
    if unit == "cm" and reference and reference != "NVT":
        return format_decimal(value / 100, "0.00", locale=locale), f"m {reference}"
    return format_decimal(value, "0.##", locale=locale), unit or ""


def around(moment: datetime, language: str) -> str:
    """ "vrijdag rond 06:00" / "Friday around 06:00", Europe/Amsterdam."""
    pattern = "EEEE 'rond' HH:mm" if language == "nl" else "EEEE 'around' HH:mm"
    locale = "nl_NL" if language == "nl" else "en_GB"
    return format_datetime(moment, pattern, tzinfo=AMSTERDAM, locale=locale)


def peak_bodies(
    rule: ForecastPeakRule,
    *,
    station: str,
    value: float,
    at: datetime,
    unit: str | None,
    reference: str | None,
    previous: tuple[float, datetime] | None = None,
) -> dict[str, str]:
    """The expected peak (or, with ``previous``, the follow-up after a new forecast)."""
    bodies = {}
    for language in LANGUAGES:
        shown, shown_unit = height(value, unit, reference, language)
        values = {
            "station": station,
            "value": shown,
            "unit": shown_unit,
            "time": around(at, language),
            "above": height(rule.forecast_peak_above, unit, reference, language)[0],
        }
        if previous is not None:
            values["previous"] = height(previous[0], unit, reference, language)[0]
            values["previous_time"] = around(previous[1], language)
        default = TEMPLATES["peak" if previous is None else "peak_follow_up"]
        custom = None if previous is not None else (rule.template or {}).get(language)
        bodies[language] = " ".join(fill(custom or default[language], values).split())
    return bodies


def cap_bodies(
    rule: CapRule | None,
    *,
    sender: str,
    event: str | None,
    headline: str | None,
    severity: str | None,
    areas: list[str],
    expires: datetime | None,
    description: str | None,
    cancel: bool = False,
) -> dict[str, str]:
    bodies = {}
    for language in LANGUAGES:
        values = {
            "sender": sender or UNKNOWN[language],
            "event": event or headline or UNKNOWN[language],
            "headline": headline or event or UNKNOWN[language],
            "severity": severity or UNKNOWN[language],
            "areas": ", ".join(areas[:10]) or UNKNOWN[language],
            "expires": local(expires, language),
            "description": (description or "")[:1000],
        }
        default = TEMPLATES["cap_cancel" if cancel else "cap"]
        custom = None if cancel or rule is None else (rule.template or {}).get(language)
        bodies[language] = " ".join(fill(custom or default[language], values).split())
    return bodies


def severity_for(
    rule: LevelRule | RiseRule | CapRule | ForecastPeakRule | None,
    cap_severity: str | None,
) -> Severity:
    if rule is not None and rule.severity is not None:
        return rule.severity
    if cap_severity is not None:
        return CAP_TO_OURS.get(cap_severity.capitalize(), Severity.warning)
    return Severity.warning


def target_incident(
    session: Session, source: FeedSource, *, title: str, severity: Severity
) -> Incident:
    """The source's incident, or (none, or resolved) a new one that the source then feeds."""
    incident = session.get(Incident, source.incident_id) if source.incident_id else None
    if incident is not None and incident.status != IncidentStatus.resolved:
        return incident
    incident = incidents.create(session, title=title, severity=severity, area_codes=source.areas)
    source.incident_id = incident.id
    session.add(source)
    audit.record(
        session,
        actor=f"feed:{source.id}",
        action="feed.incident",
        subject=f"feed:{source.id}",
        incident=incident.id,
    )
    return incident


def draft(
    session: Session,
    source: FeedSource,
    *,
    bodies: dict[str, str],
    severity: Severity,
    title: str,
    auto_publish: bool,
    channels: ChannelSet,
    reason: str,
) -> Update:
    """One update on the source's incident: a draft, or published where the rule says so."""
    incident = target_incident(session, source, title=title, severity=severity)
    update = timeline.post(
        session,
        incident,
        author=None,
        body=bodies,
        channels=channels,
        severity=severity,
        source=Source.feed,
        draft=not auto_publish,
    )
    audit.record(
        session,
        actor=f"feed:{source.id}",
        action="feed.fire",
        subject=f"update:{update.id}",
        feed=source.id,
        rule=reason,
        auto_publish=auto_publish,
    )
    log.info(
        "feed rule fired",
        extra={"feed": source.id, "update": update.id, "rule": reason, "state": update.state},
    )
    return update
