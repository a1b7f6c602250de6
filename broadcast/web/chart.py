"""The water level over the last days as an inline SVG, drawn on the server: readable without
JavaScript, with a title and description for screen readers, and a caption plus a table as the
text alternative. Pure: readings in, markup out (every text is escaped)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from broadcast.common import xml_safe
from broadcast.feeds.drafts import around, height
from broadcast.feeds.service import Series
from broadcast.i18n import AMSTERDAM, Gettext  # Gettext: translator(language), the catalogue

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 30, 36
MAX_POINTS = 600
TABLE_ROWS = 12


def _untranslated(message: str, **values: object) -> str:
    return message % values if values else message


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
    peak_text: str = ""  # rws: the expected peak in words, shown above the chart


def _text(value: str) -> str:
    """Escaped, and without what XML cannot carry: a station name from a feed ends up here."""
    return escape(xml_safe(value))


def number(value: float, language: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "nl" else text


def render(
    series: Series, *, language: str, now: datetime, days: float, _: Gettext = _untranslated
) -> Chart:
    """``_`` translates (the web catalogue); ``language`` picks the decimal mark."""
    points = _thin(series.points)
    ahead = _thin(series.forecast)
    unit = series.unit or ""
    start = now - timedelta(days=days)
    end = max([now] + [t for t, _v in ahead])  # the forecast runs on to the right of "now"
    values = [v for _t, v in points + ahead] + list(series.thresholds)
    low, high = _nice_range(min(values), max(values))
    x_of = _scale(start.timestamp(), end.timestamp(), LEFT, WIDTH - RIGHT)
    y_of = _scale(low, high, HEIGHT - BOTTOM, TOP)
    title = _("Water level %(station)s", station=series.station)
    desc = _(
        "Line chart of the water level at %(station)s over the last %(days)s days.",
        station=series.station,
        days=number(days, language),
    )
    if ahead:
        desc += " " + _("The dashed line after now is the forecast.")
    peak_text = _peak_text(series, language, _)
    ids = f"chart-{series.key}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="{ids}-title {ids}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ids}-title">{_text(title)}</title>',
        f'<desc id="{ids}-desc">{_text(desc)}</desc>',
    ]
    parts += _y_axis(low, high, y_of, unit, language)
    parts += _x_axis(start, end, x_of)
    alert_level = _("alert level")
    for threshold in series.thresholds:
        y = y_of(threshold)
        label = f"{number(threshold, language)} {unit} {alert_level}".strip()
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text class="threshold-label" x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end" font-size="12" fill="#c0392b">{_text(label)}</text>'
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
    if ahead:
        x_now = x_of(now.timestamp())
        parts.append(
            f'<line class="now" x1="{x_now:.1f}" x2="{x_now:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#555" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="now-label" x="{x_now + 4:.1f}" y="{TOP + 12}" font-size="12" '
            f'fill="#333">{_text(_("now"))}</text>'
        )
        joined = points[-1:] + ahead  # from the latest reading on
        coords = " ".join(f"{x_of(t.timestamp()):.1f},{y_of(v):.1f}" for t, v in joined)
        parts.append(
            f'<polyline class="forecast" points="{coords}" fill="none" stroke="#1f5fa8" '
            'stroke-width="2" stroke-dasharray="5 4" stroke-linejoin="round"/>'
        )
    if ahead and series.peak is not None:
        peak_t, peak_v = series.peak
        x, y = x_of(peak_t.timestamp()), y_of(peak_v)
        parts.append(
            f'<circle class="peak" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#fff" '
            'stroke="#1f5fa8" stroke-width="2"/>'
        )
        anchor = "end" if x > WIDTH - RIGHT - 90 else "start" if x < LEFT + 90 else "middle"
        parts.append(
            f'<text class="peak-label" x="{x:.1f}" y="{y - 9:.1f}" text-anchor="{anchor}" '
            f'font-size="12" fill="#1f5fa8">{_text(_("expected peak"))}</text>'
        )
    parts.append("</svg>")
    caption = _caption(series, points, language, title, _)
    if peak_text:
        caption += " " + peak_text
    if ahead:
        caption += " " + _("The dashed line after now is the forecast.")
    return Chart(
        key=ids,
        title=title,
        svg="".join(parts),
        caption=caption,
        rows=_rows(points, unit, language),
        table_label=_("Readings as a table"),
        time_label=_("Time"),
        value_label=_("Water level"),
        peak_text=peak_text,
    )


def _peak_text(series: Series, language: str, _: Gettext) -> str:
    """ "Verwachte hoogste stand bij Venlo: 15,10 m NAP, vrijdag rond 06:00." (or nothing)."""
    if series.peak is None:
        return ""
    at, value = series.peak
    shown, unit = height(value, series.unit, series.reference, language)
    return _(
        "Expected peak at %(station)s: %(value)s, %(time)s.",
        station=series.station,
        value=f"{shown} {unit}".strip(),
        time=around(at, language),
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
            f"{_text(number(round(value, 6), language))}</text>"
        )
    if unit:
        parts.append(
            f'<text x="{LEFT - 6}" y="14" text-anchor="end" font-size="12" fill="#333">'
            f"{_text(unit)}</text>"
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


def _caption(series: Series, points, language: str, title: str, _: Gettext) -> str:
    unit = series.unit or ""
    text = title
    if points:
        last_t, last_v = points[-1]
        values = [v for _t, v in points]
        now = _(
            "now %(value)s (%(time)s)",
            value=f"{number(last_v, language)} {unit}".strip(),
            time=_local(last_t),
        )
        extremes = _(
            "highest %(high)s, lowest %(low)s",
            high=number(max(values), language),
            low=f"{number(min(values), language)} {unit}".strip(),
        )
        text = f"{title}: {now}, {extremes}"
    text += "."
    if series.thresholds:
        shown = ", ".join(f"{number(t, language)} {unit}".strip() for t in series.thresholds)
        text += " " + _("Alert level %(values)s.", values=shown)
    return " ".join(text.split())


def _rows(points, unit: str, language: str) -> list[tuple[str, str]]:
    """At most TABLE_ROWS readings, spread evenly over the period, newest first."""
    if not points:
        return []
    step = max(1, math.ceil(len(points) / TABLE_ROWS))
    chosen = list(reversed(points))[::step]
    return [(_local(t), f"{number(v, language)} {unit}".strip()) for t, v in chosen]
