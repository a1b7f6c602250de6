"""The water level over the last days as an inline SVG, drawn on the server: readable without
JavaScript, with a title and description for screen readers, and a caption plus a table as the
text alternative. Pure: readings in, markup out (every text is escaped)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 30, 36
MAX_POINTS = 600
TABLE_ROWS = 12

TEXTS = {
    "nl": {
        "title": "Waterstand {station}",
        "desc": "Lijngrafiek van de waterstand bij {station} over de afgelopen {days} dagen.",
        "now": "nu {value} {unit} ({time})",
        "range": "hoogste {high}, laagste {low} {unit}",
        "threshold": "signaalwaarde",
        "thresholds": "Signaalwaarde {values}.",
        "table": "Metingen in een tabel",
        "time": "Tijd",
        "value": "Waterstand",
    },
    "en": {
        "title": "Water level {station}",
        "desc": "Line chart of the water level at {station} over the last {days} days.",
        "now": "now {value} {unit} ({time})",
        "range": "highest {high}, lowest {low} {unit}",
        "threshold": "alert level",
        "thresholds": "Alert level {values}.",
        "table": "Readings as a table",
        "time": "Time",
        "value": "Water level",
    },
}


@dataclass(frozen=True)
class Series:
    key: str  # unique on the page (ids of the SVG's title and description)
    station: str
    unit: str | None
    points: list[tuple[datetime, float]]  # oldest first
    thresholds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: str
    caption: str
    rows: list[tuple[str, str]]  # (local time, value with unit), newest first
    table_label: str
    time_label: str
    value_label: str


def number(value: float, language: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "nl" else text


def render(series: Series, *, language: str, now: datetime, days: float) -> Chart:
    texts = TEXTS[language]
    points = _thin(series.points)
    unit = series.unit or ""
    start = now - timedelta(days=days)
    values = [v for _, v in points] + list(series.thresholds)
    low, high = _nice_range(min(values), max(values))
    x_of = _scale(start.timestamp(), now.timestamp(), LEFT, WIDTH - RIGHT)
    y_of = _scale(low, high, HEIGHT - BOTTOM, TOP)
    title = texts["title"].format(station=series.station)
    desc = texts["desc"].format(station=series.station, days=number(days, language))
    ids = f"chart-{series.key}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="{ids}-title {ids}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ids}-title">{escape(title)}</title>',
        f'<desc id="{ids}-desc">{escape(desc)}</desc>',
    ]
    parts += _y_axis(low, high, y_of, unit, language)
    parts += _x_axis(start, now, x_of)
    for threshold in series.thresholds:
        y = y_of(threshold)
        label = f"{number(threshold, language)} {unit} {texts['threshold']}".strip()
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text class="threshold-label" x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end" font-size="12" fill="#c0392b">{escape(label)}</text>'
        )
    if points:
        coords = " ".join(f"{x_of(t.timestamp()):.1f},{y_of(v):.1f}" for t, v in points)
        parts.append(
            f'<polyline class="level" points="{coords}" fill="none" stroke="#1f5fa8" '
            'stroke-width="2" stroke-linejoin="round"/>'
        )
        last_t, last_v = points[-1]
        parts.append(
            f'<circle class="latest" cx="{x_of(last_t.timestamp()):.1f}" cy="{y_of(last_v):.1f}" '
            'r="4" fill="#1f5fa8"/>'
        )
    parts.append("</svg>")
    return Chart(
        key=ids,
        title=title,
        svg="".join(parts),
        caption=_caption(series, points, language, title),
        rows=_rows(points, unit, language),
        table_label=texts["table"],
        time_label=texts["time"],
        value_label=texts["value"],
    )


def _thin(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    step = math.ceil(len(points) / MAX_POINTS)
    return list(points[::step]) + ([points[-1]] if (len(points) - 1) % step else [])


def _scale(a: float, b: float, out_a: float, out_b: float):
    span = (b - a) or 1.0
    return lambda value: out_a + (value - a) * (out_b - out_a) / span


def _step(span: float) -> float:
    raw = span / 5 if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _nice_range(low: float, high: float) -> tuple[float, float]:
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    step = _step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _y_axis(low, high, y_of, unit: str, language: str) -> list[str]:
    step = _step(high - low)
    parts = []
    count = round((high - low) / step)
    for index in range(count + 1):
        value = low + index * step
        y = y_of(value)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="#333">'
            f"{escape(number(round(value, 6), language))}</text>"
        )
    if unit:
        parts.append(
            f'<text x="{LEFT - 6}" y="14" text-anchor="end" font-size="12" fill="#333">'
            f"{escape(unit)}</text>"
        )
    return parts


def _x_axis(start: datetime, end: datetime, x_of) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#999" stroke-width="1"/>'
    ]
    day = start.astimezone(AMSTERDAM).replace(hour=0, minute=0, second=0, microsecond=0)
    day += timedelta(days=1)
    while day <= end:
        x = x_of(day.timestamp())
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
            'stroke="#eee" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="12" '
            f'fill="#333">{day:%d-%m}</text>'
        )
        day += timedelta(days=1)  # wall-clock arithmetic: the next local midnight, DST or not
    return parts


def _local(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).strftime("%d-%m %H:%M")


def _caption(series: Series, points, language: str, title: str) -> str:
    texts = TEXTS[language]
    unit = series.unit or ""
    parts = [title]
    if points:
        last_t, last_v = points[-1]
        values = [v for _, v in points]
        parts.append(
            texts["now"].format(value=number(last_v, language), unit=unit, time=_local(last_t))
        )
        parts.append(
            texts["range"].format(
                high=number(max(values), language), low=number(min(values), language), unit=unit
            )
        )
    text = ": ".join(parts[:2]) + (", " + parts[2] if len(parts) > 2 else "") + "."
    if series.thresholds:
        shown = ", ".join(f"{number(t, language)} {unit}".strip() for t in series.thresholds)
        text += " " + texts["thresholds"].format(values=shown)
    return " ".join(text.split())


def _rows(points, unit: str, language: str) -> list[tuple[str, str]]:
    """At most TABLE_ROWS readings, spread evenly over the period, newest first."""
    if not points:
        return []
    step = max(1, math.ceil(len(points) / TABLE_ROWS))
    chosen = list(reversed(points))[::step]
    return [(_local(t), f"{number(v, language)} {unit}".strip()) for t, v in chosen]
