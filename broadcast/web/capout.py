"""Our published updates as CAP 1.2 alerts, and an Atom index of the current ones, so other
warning systems (and our own ``cap`` feed kind) can read them.

Mapping: a published update is an ``Alert``; a correction an ``Update`` and a retraction a
``Cancel``, each with ``<references>`` to the update it supersedes; the all-clear an ``Update``
with ``responseType`` AllClear that references the incident's updates still in force. The status
is ``Exercise`` for an exercise incident. One ``<info>`` per language of the body (nl-NL, en-US);
our severities map onto CAP's (info Minor, advisory Moderate, warning Severe, emergency Extreme).
Times are Europe/Amsterdam with their offset, as CAP's pattern demands (no "Z", no fractions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from broadcast.common import Severity, xml_safe
from broadcast.feeds.rules import OURS_TO_CAP
from broadcast.incidents.models import Incident
from broadcast.timeline.models import Update, UpdateKind, UpdateState

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM = ""  # see _sub
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LANGUAGES = {"nl": "nl-NL", "en": "en-US"}
URGENCY = {
    Severity.emergency: "Immediate",
    Severity.warning: "Expected",
    Severity.advisory: "Future",
    Severity.info: "Unknown",
}
KIND_LABEL = {
    UpdateKind.correction: {"nl": "Correctie", "en": "Correction"},
    UpdateKind.retraction: {"nl": "Ingetrokken", "en": "Retracted"},
    UpdateKind.all_clear: {"nl": "Alles veilig", "en": "All clear"},
}
ET.register_namespace("cap", CAP_NS)


@dataclass(frozen=True)
class Publisher:
    public_url: str
    municipality: str
    sender_setting: str | None = None

    @property
    def sender(self) -> str:
        return self.sender_setting or urlsplit(self.public_url).hostname or "broadcast"

    def identifier(self, update_id: int) -> str:
        return f"{self.sender}-update-{update_id}"

    def cap_url(self, update_id: int) -> str:
        return f"{self.public_url.rstrip('/')}/updates/{update_id}.cap"

    def web(self, incident: Incident, update_id: int) -> str:
        return f"{self.public_url.rstrip('/')}/incidents/{incident.slug}#update-{update_id}"

    def reference(self, update: Update) -> str:
        return (
            f"{self.sender},{self.identifier(_stored_id(update))},{cap_time(update.published_at)}"
        )


def _stored_id(update: Update) -> int:
    """Only stored (published) updates become CAP documents: their id is set."""
    assert update.id is not None
    return update.id


def cap_time(moment: datetime | None) -> str:
    return moment.astimezone(AMSTERDAM).replace(microsecond=0).isoformat() if moment else ""


def is_cap_alert(update: Update) -> bool:
    """Published (or published and later retracted) public updates; never a private answer,
    a draft or a Q&A."""
    return (
        update.public
        and update.kind != UpdateKind.answer
        and update.published_at is not None
        and update.state in (UpdateState.published, UpdateState.retracted)
    )


def msg_type(update: Update) -> str:
    if update.kind == UpdateKind.retraction:
        return "Cancel"
    if update.kind in (UpdateKind.correction, UpdateKind.all_clear):
        return "Update"
    return "Alert"


def _sub(parent: ET.Element, name: str, text: str | None = None, ns: str = CAP_NS) -> ET.Element:
    # Atom elements are written unqualified under a root that declares the Atom namespace as
    # the default (ElementTree's default_namespace refuses unqualified attributes).
    # Every text passes here: ElementTree would write what XML cannot carry (rows older than
    # the input check, feed data) and leave a document no reader can parse.
    element = ET.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
    if text is not None:
        element.text = xml_safe(text)
    return element


def alert_document(
    update: Update,
    incident: Incident,
    *,
    publisher: Publisher,
    references: list[Update],
    area_names: dict[str, str],
    postcodes: dict[str, list[str]],
) -> bytes:
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", publisher.identifier(_stored_id(update)))
    _sub(root, "sender", publisher.sender)
    _sub(root, "sent", cap_time(update.published_at))
    _sub(root, "status", "Exercise" if incident.exercise else "Actual")
    _sub(root, "msgType", msg_type(update))
    _sub(root, "scope", "Public")
    if update.kind == UpdateKind.retraction and update.body:
        _sub(root, "note", update.body.get("nl") or next(iter(update.body.values())))
    if references:
        _sub(root, "references", " ".join(publisher.reference(r) for r in references))
    _sub(root, "incidents", incident.slug)
    severity = Severity(update.severity)
    past = update.kind in (UpdateKind.all_clear, UpdateKind.retraction)
    for language, cap_language in LANGUAGES.items():
        text = update.body.get(language)
        if not text:
            continue
        info = _sub(root, "info")
        _sub(info, "language", cap_language)
        _sub(info, "category", "Safety")
        _sub(info, "event", incident.title)
        if update.kind == UpdateKind.all_clear:
            _sub(info, "responseType", "AllClear")
        _sub(info, "urgency", "Past" if past else URGENCY[severity])
        _sub(info, "severity", "Minor" if past else OURS_TO_CAP[severity])
        _sub(info, "certainty", "Observed")
        _sub(info, "effective", cap_time(update.published_at))
        _sub(info, "senderName", publisher.municipality)
        label = KIND_LABEL.get(update.kind, {}).get(language)
        _sub(info, "headline", f"{label}: {incident.title}" if label else incident.title)
        _sub(info, "description", text)
        _sub(info, "web", publisher.web(incident, _stored_id(update)))
        _area(info, update.areas, area_names, postcodes, publisher.municipality)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def _area(info, codes, area_names, postcodes, municipality: str) -> None:
    area = _sub(info, "area")
    names = [area_names.get(code, code) for code in codes]
    _sub(area, "areaDesc", ", ".join(names) or municipality)
    for code in codes:
        for postcode in postcodes.get(code, []):
            geocode = _sub(area, "geocode")
            _sub(geocode, "valueName", "PC4")
            _sub(geocode, "value", postcode)


def index_document(
    entries: list[tuple[Update, Incident, list[Update]]],
    *,
    publisher: Publisher,
    area_names: dict[str, str],
    updated: datetime,
) -> bytes:
    """Atom, one entry per current alert, each with the CAP fields a reader filters on (the
    NWS and MeteoAlarm index style) and a link to the full CAP document."""
    base = publisher.public_url.rstrip("/")
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _sub(feed, "id", f"{base}/cap.atom", ATOM)
    _sub(feed, "title", f"{publisher.municipality}: CAP", ATOM)
    _sub(feed, "updated", cap_time(updated), ATOM)
    ET.SubElement(feed, "link", rel="self", href=f"{base}/cap.atom")
    author = _sub(feed, "author", ns=ATOM)
    _sub(author, "name", publisher.municipality, ATOM)
    for update, incident, references in entries:
        entry = _sub(feed, "entry", ns=ATOM)
        _sub(entry, "id", publisher.cap_url(_stored_id(update)), ATOM)
        label = KIND_LABEL.get(update.kind, {}).get("nl")
        _sub(entry, "title", f"{label}: {incident.title}" if label else incident.title, ATOM)
        _sub(entry, "updated", cap_time(update.published_at), ATOM)
        _sub(entry, "published", cap_time(update.published_at), ATOM)
        ET.SubElement(
            entry,
            "link",
            rel="alternate",
            type="application/cap+xml",
            href=publisher.cap_url(_stored_id(update)),
        )
        text = update.body.get("nl") or next(iter(update.body.values()), "")
        _sub(entry, "summary", text, ATOM)
        severity = Severity(update.severity)
        past = update.kind in (UpdateKind.all_clear, UpdateKind.retraction)
        for name, value in (
            ("identifier", publisher.identifier(_stored_id(update))),
            ("sender", publisher.sender),
            ("sent", cap_time(update.published_at)),
            ("status", "Exercise" if incident.exercise else "Actual"),
            ("msgType", msg_type(update)),
            ("references", " ".join(publisher.reference(r) for r in references) or None),
            ("event", incident.title),
            ("urgency", "Past" if past else URGENCY[severity]),
            ("severity", "Minor" if past else OURS_TO_CAP[severity]),
            ("certainty", "Observed"),
            ("areaDesc", ", ".join(area_names.get(c, c) for c in update.areas) or None),
        ):
            if value:
                _sub(entry, name, value)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
