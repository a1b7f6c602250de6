"""Parse polled water-level documents (RSS/Atom, JSON) into readings.

Pure functions: bytes in, frozen results out. No fetching, storage or scheduling.
CAP warnings are read by :mod:`broadcast.feeds.parse.cap`, which shares the helpers here so that
both kinds agree on what a document is and refuse each other's formats.

Number notation (``parse_value``). Dutch and English feeds disagree on ``.`` and ``,``:
- both marks present: the last one is the decimal mark ("1.234,5" and "1,234.5" are 1234.5);
- one mark repeated: thousands ("1.234.567");
- one mark once: decimal ("12,47", "16.3"), except the ambiguous shape 1-3 digits, mark,
  exactly 3 digits ("1.234", "12,470"). That is read as thousands only when the unit is cm
  or mm (a level in cm/mm never has three decimals), otherwise as decimal ("1.234 m" is
  1.234 m, which also matches a bare "1.234"). A leading 0 ("0,125") is always decimal.
Thousands groups must be 3 digits; a malformed group ("1.23.4") is not a number.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from time import struct_time
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
import feedparser
from defusedxml import DefusedXmlException

from broadcast.common import xml_safe

__all__ = [
    "FeedError",
    "LevelResult",
    "Reading",
    "entry_key",
    "parse_json",
    "parse_levels",
    "parse_value",
]

CAP_NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.2": "1.2",
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
}
CAP_NS_PREFIX = "urn:oasis:names:tc:emergency:cap:"

# Measurement units recognised right after a number. A whitelist, because "12 uur" or
# "3 in Venlo" must not turn a word into a unit that threshold rules then compare.
UNITS = (
    "mm", "cm", "dm", "m", "km", "ft", "m3/s", "m³/s", "m3/h", "l/s", "cfs", "mm/h",
    "km/h", "m/s", "mph", "kn", "Bft", "bft", "°C", "°F", "%", "hPa", "mbar",
)  # fmt: skip
# Units in which three decimals are implausible, so "1.234 cm" means 1234 cm.
_WHOLE_UNITS = {"cm", "mm"}
_DATUMS = r"NAP|TAW|LAT|MSL|NHN|NN"

_NUMBER = re.compile(r"(?<![\w.,])[-+\u2212]?\d+(?:[.,]\d+)*")
_UNIT = re.compile(
    r"\s*(?P<unit>"
    + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
    + r")(?![\w/²³])"
    + rf"(?:\s+(?P<datum>[+-]?\s?(?:t\.o\.v\.\s+)?(?:{_DATUMS}))\b)?"
)
_TAG = re.compile(r"<[^>]+>")


class FeedError(Exception):
    """A document that cannot be read as the requested kind; str() says why."""


@dataclass(frozen=True)
class Reading:
    key: str  # entry key + observation time: stable across re-publication
    value: float
    unit: str | None
    observed_at: datetime  # aware, UTC
    station: str | None
    title: str | None


@dataclass(frozen=True)
class LevelResult:
    readings: list[Reading]
    warnings: list[str]


# --- numbers -------------------------------------------------------------------------


def parse_value(text: str, pattern: str | None = None) -> tuple[float, str | None] | None:
    """The number (group 1 of ``pattern``, else the first one) and the unit right after it."""
    if pattern is None:
        return _first_value(text, 0, len(text))
    match = re.search(pattern, text)
    group = 1 if match and match.re.groups else 0
    if match is None or match.start(group) < 0:
        return None
    return _first_value(text, match.start(group), match.end(group))


def _first_value(text: str, start: int, end: int) -> tuple[float, str | None] | None:
    # Slice so the number's look-behind cannot see text before a pattern group.
    for number in _NUMBER.finditer(text[start:end]):
        unit = _unit_after(text, start + number.end())
        value = _to_float(number.group(), unit)
        if value is not None:
            return value, unit
    return None


def _unit_after(text: str, pos: int) -> str | None:
    match = _UNIT.match(text, pos)
    if match is None:
        return None
    datum = match.group("datum")
    return f"{match.group('unit')} {' '.join(datum.split())}" if datum else match.group("unit")


def _to_float(token: str, unit: str | None) -> float | None:
    negative = token[0] in "-\u2212"
    digits = token.lstrip("+-\u2212")
    mark = _decimal_mark(digits, unit)
    whole, frac = digits.rpartition(mark)[::2] if mark else (digits, "")
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and not _thousands_ok(whole, groups):
        return None
    value = float("".join(groups) + (f".{frac}" if frac else ""))
    return -value if negative else value


def _decimal_mark(digits: str, unit: str | None) -> str | None:
    marks = [c for c in digits if c in ".,"]
    if not marks:
        return None
    if len(set(marks)) == 2:
        return marks[-1]
    if len(marks) > 1:
        return None  # "1.234.567": a repeated mark only separates thousands
    lead, frac = digits.split(marks[0])
    ambiguous = len(frac) == 3 and 1 <= len(lead) <= 3 and not lead.startswith("0")
    whole_unit = unit is not None and unit.split()[0] in _WHOLE_UNITS
    return None if ambiguous and whole_unit else marks[0]


def _thousands_ok(whole: str, groups: list[str]) -> bool:
    one_kind = len({c for c in whole if c in ".,"}) == 1
    return one_kind and 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


# --- shared helpers (also used by broadcast.feeds.parse.cap) ---------------------------------


def require_bytes(content: bytes) -> bytes:
    # feedparser treats a str as a URL or file name: never let a document become a fetch.
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(f"pass the document as bytes, not {type(content).__name__}")
    return bytes(content)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def namespace_of(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def sniff_root(content: bytes) -> tuple[str, str] | None:
    """(namespace, local name) of the root element, or None if no root can be read.

    Reads only up to the root start tag, so a feed that breaks further down still has a
    root. Entity declarations (billion laughs, XXE) are refused here, before any parser
    could expand them.
    """
    try:
        for _event, element in safe_et.iterparse(io.BytesIO(content), events=("start",)):
            return namespace_of(element.tag), local_name(element.tag)
    except DefusedXmlException as exc:
        raise FeedError(f"refused: {exc} (entity declarations are not accepted)") from exc
    except (ParseError, LookupError, ValueError):
        return None
    return None


def parse_tree(content: bytes) -> Element:
    """The whole document as a defused ElementTree, or FeedError with expat's reason."""
    try:
        return safe_et.fromstring(content)
    except DefusedXmlException as exc:
        raise FeedError(f"refused: {exc} (entity declarations are not accepted)") from exc
    except (ParseError, LookupError, ValueError) as exc:
        raise FeedError(f"not well-formed XML: {exc}") from exc


def describe_root(root: tuple[str, str] | None) -> str:
    if root is None:
        return "no readable root element"
    namespace, name = root
    return f"root element <{name}>" + (f" in namespace {namespace}" if namespace else "")


def read_feed(content: bytes, root: tuple[str, str] | None) -> tuple[Any, list[str]]:
    """feedparser's result for an RSS/Atom document, with bozo turned into warnings."""
    parsed = feedparser.parse(content)
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.entries:
        if bozo is not None:
            raise FeedError(f"not a feed: no entries and bozo: {bozo}")
        if not parsed.get("version"):
            raise FeedError(f"not a feed: {describe_root(root)} is not RSS or Atom")
        return parsed, ["feed is well-formed but has no entries"]
    if bozo is not None:
        return parsed, [f"feed is not well-formed (bozo), entries used anyway: {bozo}"]
    return parsed, []


def cap_namespace(parsed: Any) -> tuple[str, str] | None:
    """(feedparser key prefix, namespace) of the CAP extension in a feed, if declared."""
    for prefix, uri in parsed.get("namespaces", {}).items():
        if prefix and uri.startswith(CAP_NS_PREFIX):
            # feedparser names unknown extension elements "<prefix>_<name>", lowercased.
            return prefix.lower(), uri
    return None


def parse_iso(text: str | None) -> datetime | None:
    """An ISO-8601 time as aware UTC; None if absent, invalid or without a time zone."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    # A naive time is refused rather than guessed: UTC and Dutch time differ by 1-2 hours.
    return moment.astimezone(UTC) if moment.tzinfo else None


def own(entry: Mapping[str, Any], key: str) -> Any:
    # `in` first: feedparser's get("updated...") silently (with a DeprecationWarning)
    # answers with the published time instead.
    return entry[key] if key in entry else None  # noqa: SIM401 (get is the trap)


def entry_time(entry: Mapping[str, Any]) -> datetime | None:
    """The entry's updated, else published time (feedparser already normalises to UTC)."""
    for key in ("updated_parsed", "published_parsed"):
        parsed = own(entry, key)
        if isinstance(parsed, struct_time):
            return datetime(*parsed[:6], tzinfo=UTC)
    return None


def plain_text(value: Any) -> str:
    """Text of a feedparser field with markup removed (summaries are sanitised HTML), and
    without characters no XML can carry (a lenient parse lets ``&#7;`` through)."""
    if not isinstance(value, str):
        return ""
    return " ".join(xml_safe(html.unescape(_TAG.sub(" ", value))).split())


def entry_key(entry: Mapping[str, Any]) -> str:
    """The entry id, else a sha256 of link|title|date, so re-published entries match."""
    entry_id = str(entry.get("id") or "").strip()
    if entry_id:
        return entry_id
    date = own(entry, "updated") or own(entry, "published") or ""
    raw = "|".join(str(entry.get(name) or "") for name in ("link", "title")) + f"|{date}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def entry_label(entry: Mapping[str, Any]) -> str:
    title = plain_text(entry.get("title"))
    return repr(title[:60]) if title else entry_key(entry)


# --- RSS / Atom level feeds ------------------------------------------------------------


def parse_levels(
    content: bytes, *, value_pattern: str | None = None, unit: str | None = None
) -> LevelResult:
    """Readings from an RSS/Atom gauge feed: the value from each entry's title, else summary.

    ``unit`` is the feed's configured unit, used when the text names none.
    """
    content = require_bytes(content)
    if value_pattern is not None:
        re.compile(value_pattern)  # a broken pattern is a configuration error: fail early
    root = sniff_root(content)
    if root and root[1] == "alert" and root[0].startswith(CAP_NS_PREFIX):
        raise FeedError("a CAP alert, not a level feed: read it with parse_cap")
    parsed, warnings = read_feed(content, root)
    if cap_namespace(parsed):
        raise FeedError("a CAP index feed (cap: elements), not a level feed: use parse_cap")
    readings = [
        reading
        for entry in parsed.entries
        if (reading := _entry_reading(entry, value_pattern, unit, warnings)) is not None
    ]
    return LevelResult(readings, warnings)


def _entry_reading(
    entry: Mapping[str, Any], pattern: str | None, unit: str | None, warnings: list[str]
) -> Reading | None:
    title = plain_text(entry.get("title"))
    in_title = parse_value(title, pattern)
    found = in_title or parse_value(plain_text(entry.get("summary")), pattern)
    if found is None:
        warnings.append(f"entry {entry_label(entry)}: no value in title or summary; skipped")
        return None
    observed = entry_time(entry)
    if observed is None:
        warnings.append(f"entry {entry_label(entry)}: no updated/published time; skipped")
        return None
    value, text_unit = found
    if unit and text_unit and text_unit != unit:
        warnings.append(
            f"entry {entry_label(entry)}: unit {text_unit!r} in the text differs from the "
            f"configured {unit!r}; the text's unit is kept"
        )
    return Reading(
        key=f"{entry_key(entry)}@{observed.isoformat()}",
        value=value,
        unit=text_unit or unit,
        observed_at=observed,
        station=_station(title, in_title is not None),
        title=title or None,
    )


def _station(title: str, value_in_title: bool) -> str | None:
    # Gauge feeds title entries "Station: value" (colon and space, so "Depth:10km" is not
    # one); a title without the value names the station.
    head, colon, _ = title.partition(": ")
    if colon and head.strip():
        return head.strip()
    return None if value_in_title else title or None


# --- JSON gauge APIs -------------------------------------------------------------------


def parse_json(
    content: bytes,
    *,
    items_path: str,
    value_path: str,
    time_path: str,
    unit: str | None = None,
) -> LevelResult:
    """Readings from a JSON gauge API, located with dotted paths ("features.0.properties")."""
    content = require_bytes(content)
    try:
        document = json.loads(content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise FeedError(f"not JSON: {exc}") from exc
    items = _lookup(document, items_path, "items_path")
    if not isinstance(items, list):
        raise FeedError(f"items_path {items_path!r} is a {type(items).__name__}, not a list")
    if not items:
        return LevelResult([], [f"no items at items_path {items_path!r}"])
    readings: list[Reading] = []
    warnings: list[str] = []
    path_errors: list[str] = []
    for index, item in enumerate(items):
        try:
            raw_value = _lookup(item, value_path, "value_path")
            raw_time = _lookup(item, time_path, "time_path")
        except FeedError as exc:
            path_errors.append(f"item {index}: {exc}; skipped")
            continue
        reading = _json_reading(item, raw_value, raw_time, unit)
        if isinstance(reading, str):
            warnings.append(f"item {index}: {reading}; skipped")
        else:
            readings.append(reading)
    # A path that fits no item at all is a wrong path, not a few incomplete items.
    if len(path_errors) == len(items):
        raise FeedError(path_errors[0].removesuffix("; skipped"))
    return LevelResult(readings, path_errors + warnings)


def _lookup(data: Any, path: str, label: str) -> Any:
    current = data
    for part in path.split(".") if path else []:
        try:
            current = current[int(part)] if isinstance(current, list) else current[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise FeedError(f"{label} {path!r} failed at {part!r}") from None
    return current


def _json_reading(item: Any, raw_value: Any, raw_time: Any, unit: str | None) -> Reading | str:
    """A Reading, or the reason (str) why this item has none."""
    found = _json_value(raw_value)
    if found is None:
        return f"value {raw_value!r} is not a number"
    observed = parse_iso(raw_time) if isinstance(raw_time, str) else None
    if observed is None:
        return f"time {raw_time!r} is not ISO-8601 with a time zone"
    value, text_unit = found
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
    return Reading(digest, value, text_unit or unit, observed, station=None, title=None)


def _json_value(raw: Any) -> tuple[float, str | None] | None:
    if isinstance(raw, bool):
        return None  # bool is an int subclass, never a level
    if isinstance(raw, int | float):
        return (float(raw), None) if math.isfinite(raw) else None
    if isinstance(raw, str):
        return parse_value(raw)
    return None
