"""Parse CAP warnings: a single CAP 1.2/1.1 <alert>, or an Atom/RSS index of CAP alerts.

Which of the two is decided by the document's root element, never by trying both:
<alert> in a CAP namespace is a single alert; an Atom <feed>, <rss> or RSS 1.0 <RDF> root
is an index, read with feedparser, and must declare a CAP namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from broadcast.feeds.parse.parsing import (
    CAP_NAMESPACES,
    FeedError,
    cap_namespace,
    describe_root,
    entry_key,
    entry_label,
    entry_time,
    local_name,
    parse_iso,
    parse_tree,
    plain_text,
    read_feed,
    require_bytes,
    sniff_root,
)
from broadcast.i18n import LANGUAGES

__all__ = ["CapAlert", "CapResult", "parse_cap"]

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_FEED_ROOTS = {
    ("http://www.w3.org/2005/Atom", "feed"): "an Atom feed",
    ("http://purl.org/atom/ns#", "feed"): "an Atom 0.3 feed",
    ("", "rss"): "an RSS feed",
    ("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "RDF"): "an RSS 1.0 (RDF) feed",
}
_MSG_TYPES = {name.lower(): name for name in ("Alert", "Update", "Cancel", "Ack", "Error")}
_CAP_DEFAULT_LANGUAGE = "en-US"  # CAP 1.2 section 3.2.2: <language> defaults to en-US


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime  # aware, UTC
    status: str
    msg_type: str  # "Alert", "Update", "Cancel" (or "Ack"/"Error")
    references: list[str] = field(default_factory=list)  # identifiers of earlier alerts
    event: str | None = None
    severity: str | None = None
    urgency: str | None = None
    certainty: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    language: str | None = None
    areas: list[str] = field(default_factory=list)  # areaDesc texts
    geocodes: list[tuple[str, str]] = field(default_factory=list)  # (valueName, value)
    polygons: list[str] = field(default_factory=list)  # "lat,lon lat,lon ..." as sent
    expires: datetime | None = None
    onset: datetime | None = None
    web: str | None = None
    link: str | None = None  # index entries: where the full CAP message is


@dataclass(frozen=True)
class CapResult:
    alerts: list[CapAlert]
    warnings: list[str]


def parse_cap(content: bytes) -> CapResult:
    """CAP alerts from a single CAP document or from an Atom/RSS index of CAP alerts."""
    content = require_bytes(content)
    root = sniff_root(content)
    if root is None:
        parse_tree(content)  # raises FeedError with the XML parser's reason
        raise FeedError("not XML: no root element")
    if root[1] == "alert":
        return _single_alert(content, root[0])
    if root in _FEED_ROOTS:
        return _index(content, root)
    raise FeedError(f"CAP document expected, got {describe_root(root)}")


def _version_warning(namespace: str) -> list[str]:
    version = CAP_NAMESPACES.get(namespace)
    if version is None:
        raise FeedError(f"unsupported CAP namespace {namespace!r}: only CAP 1.2 and 1.1 are read")
    if version == "1.2":
        return []
    return [f"CAP {version} namespace {namespace} accepted; read with CAP 1.2 field names"]


# --- a single <alert> ------------------------------------------------------------------


def _single_alert(content: bytes, namespace: str) -> CapResult:
    warnings = _version_warning(namespace)
    root = parse_tree(content)
    if root.find(f"{{{DSIG_NS}}}Signature") is not None:
        warnings.append("signature not verified: the enveloped ds:Signature was ignored")
    return CapResult([_alert(root, namespace, warnings)], warnings)


def _text(element: Element, namespace: str, name: str) -> str | None:
    text = element.findtext(f"{{{namespace}}}{name}")
    return text.strip() if text and text.strip() else None


def _alert(root: Element, ns: str, warnings: list[str]) -> CapAlert:
    header = {name: _text(root, ns, name) for name in ("identifier", "sender", "status")}
    header["msgType"] = _text(root, ns, "msgType")
    header["sent"] = _text(root, ns, "sent")
    missing = [name for name, value in header.items() if value is None]
    if missing:
        raise FeedError(f"CAP alert lacks required element(s): {', '.join(missing)}")
    sent = parse_iso(header["sent"])
    if sent is None:
        raise FeedError(f"CAP <sent> {header['sent']!r} is not ISO-8601 with a time zone")
    info = _choose_info(root.findall(f"{{{ns}}}info"), ns)
    return CapAlert(
        identifier=str(header["identifier"]),
        sender=str(header["sender"]),
        sent=sent,
        status=str(header["status"]),
        msg_type=_msg_type(str(header["msgType"]), warnings),
        references=parse_references(_text(root, ns, "references"), warnings),
        **(_info_fields(info, ns, warnings) if info is not None else {}),
    )


def _choose_info(infos: list[Element], ns: str) -> Element | None:
    """The first Dutch <info>, else the first English one, else the first (a Cancel has none)."""
    for prefix in LANGUAGES:  # ours, the default first
        for info in infos:
            if (_text(info, ns, "language") or _CAP_DEFAULT_LANGUAGE).lower().startswith(prefix):
                return info
    return infos[0] if infos else None


def _info_fields(info: Element, ns: str, warnings: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: _text(info, ns, name)
        for name in ("event", "severity", "urgency", "certainty", "headline", "description")
    }
    fields["instruction"] = _text(info, ns, "instruction")
    fields["web"] = _text(info, ns, "web")
    fields["language"] = _text(info, ns, "language") or _CAP_DEFAULT_LANGUAGE
    for name in ("expires", "onset"):
        fields[name] = _time_field(_text(info, ns, name), name, warnings)
    areas = info.findall(f"{{{ns}}}area")
    fields["areas"] = [text for area in areas if (text := _text(area, ns, "areaDesc"))]
    fields["polygons"] = _texts(el for area in areas for el in area.findall(f"{{{ns}}}polygon"))
    fields["geocodes"] = [
        pair for area in areas for code in area.findall(f"{{{ns}}}geocode") for pair in _pairs(code)
    ]
    circles = sum(len(area.findall(f"{{{ns}}}circle")) for area in areas)
    if circles:
        warnings.append(f"{circles} <circle> area(s) not kept; use areas/geocodes for them")
    return fields


def _time_field(text: str | None, name: str, warnings: list[str]) -> datetime | None:
    moment = parse_iso(text)
    if text and moment is None:
        warnings.append(f"<{name}> {text!r} is not ISO-8601 with a time zone; ignored")
    return moment


def _texts(elements: Iterable[Element]) -> list[str]:
    # Real feeds carry empty <polygon/> elements; they describe nothing.
    return [text.strip() for el in elements if (text := el.text) and text.strip()]


def _pairs(element: Element) -> list[tuple[str, str]]:
    """(valueName, value) pairs; one geocode element may hold several (NWS index)."""
    pairs: list[tuple[str, str]] = []
    name: str | None = None
    for child in element:
        text = (child.text or "").strip()
        if local_name(child.tag) == "valueName":
            name = text
        elif local_name(child.tag) == "value" and name is not None:
            pairs.append((name, text))
            name = None
    return pairs


def _msg_type(raw: str, warnings: list[str]) -> str:
    canonical = _MSG_TYPES.get(raw.strip().lower())
    if canonical is None:
        warnings.append(f"unknown msgType {raw!r} kept as sent")
        return raw
    return canonical


def parse_references(text: str | None, warnings: list[str]) -> list[str]:
    """Identifiers from CAP <references>: space-separated "sender,identifier,sent" triples."""
    identifiers = []
    for triple in (text or "").split():
        parts = triple.split(",")
        if len(parts) == 3 and parts[1]:
            identifiers.append(parts[1])
        else:
            warnings.append(f"reference {triple!r} is not sender,identifier,sent; ignored")
    return identifiers


# --- an Atom/RSS index of CAP alerts ---------------------------------------------------

_Extras = tuple[list[str], list[tuple[str, str]], list[str]]  # areas, geocodes, polygons


def _index(content: bytes, root: tuple[str, str]) -> CapResult:
    parsed, warnings = read_feed(content, root)
    found = cap_namespace(parsed)
    if found is None:
        raise FeedError(f"CAP document expected, got {_FEED_ROOTS[root]} without cap: elements")
    prefix, namespace = found
    warnings = _version_warning(namespace) + warnings
    extras = _entry_extras(content, namespace, len(parsed.entries), warnings)
    alerts = []
    for index, entry in enumerate(parsed.entries):
        alert = _index_alert(entry, prefix, extras[index] if extras else None, warnings)
        if alert is not None:
            alerts.append(alert)
    return CapResult(alerts, warnings)


def _entry_extras(
    content: bytes, namespace: str, expected: int, warnings: list[str]
) -> list[_Extras] | None:
    """Areas, geocodes and polygons per entry, read with ElementTree.

    feedparser flattens <valueName>/<value> into single "valuename"/"value" keys (last one
    wins, and cap:parameter overwrites cap:geocode), and keeps only the last of repeated
    elements, so it cannot give the geocodes that area matching needs.
    """
    try:
        root = parse_tree(content)
    except FeedError as exc:
        warnings.append(f"geocodes not read: {exc}")
        return None
    entries = [el for el in root.iter() if local_name(el.tag) in ("entry", "item")]
    if len(entries) != expected:
        warnings.append(f"geocodes not read: {len(entries)} XML entries, {expected} in the feed")
        return None
    return [_extras(entry, namespace) for entry in entries]


def _extras(entry: Element, ns: str) -> _Extras:
    areas = _texts(entry.iter(f"{{{ns}}}areaDesc"))
    geocodes = [pair for code in entry.iter(f"{{{ns}}}geocode") for pair in _pairs(code)]
    return areas, geocodes, _texts(entry.iter(f"{{{ns}}}polygon"))


def _index_alert(
    entry: Mapping[str, Any], prefix: str, extras: _Extras | None, warnings: list[str]
) -> CapAlert | None:
    def cap(name: str) -> str | None:
        value = entry.get(f"{prefix}_{name}")
        return value.strip() if isinstance(value, str) and value.strip() else None

    label = entry_label(entry)
    status = cap("status")
    # feedparser lowercases element names: NWS cap:msgType -> msgtype; MeteoAlarm uses
    # its own cap:message_type.
    msg_type = cap("msgtype") or cap("message_type")
    if status is None or msg_type is None:
        warnings.append(f"entry {label}: no cap:status or cap:msgType; skipped")
        return None
    sent = parse_iso(cap("sent")) or entry_time(entry)
    if sent is None:
        warnings.append(f"entry {label}: no cap:sent and no entry date; skipped")
        return None
    if extras is None:  # not well-formed: fall back to feedparser's single values
        extras = (_one(cap("areadesc")), [], _one(cap("polygon")))
    areas, geocodes, polygons = extras
    return CapAlert(
        identifier=cap("identifier") or entry_key(entry),
        sender=cap("sender") or str(entry.get("author") or ""),
        sent=sent,
        status=status,
        msg_type=_msg_type(msg_type, warnings),
        references=parse_references(cap("references"), warnings),
        event=cap("event"),
        severity=cap("severity"),
        urgency=cap("urgency"),
        certainty=cap("certainty"),
        headline=cap("headline") or plain_text(entry.get("title")) or None,
        description=cap("description") or plain_text(entry.get("summary")) or None,
        instruction=cap("instruction"),
        language=cap("language") or entry.get("title_detail", {}).get("language"),
        areas=areas,
        geocodes=geocodes,
        polygons=polygons,
        expires=_time_field(cap("expires"), "cap:expires", warnings),
        onset=_time_field(cap("onset"), "cap:onset", warnings),
        web=cap("web") or entry.get("link"),
        link=_cap_link(entry),
    )


def _one(text: str | None) -> list[str]:
    return [text] if text else []


def _cap_link(entry: Mapping[str, Any]) -> str | None:
    """The link to the full CAP message: the one typed application/cap+xml, else the link."""
    for link in entry.get("links", []):
        if link.get("type") == "application/cap+xml" and link.get("href"):
            return str(link["href"])
    return entry.get("link")
