"""Dutch first, English available. The language comes from ``?lang=``, then a cookie."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request

LANGUAGES = ("nl", "en")
COOKIE = "lang"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Actuele informatie",
        "active": "Lopende incidenten",
        "none_active": "Er zijn op dit moment geen incidenten.",
        "resolved": "Afgerond",
        "next_update": "Volgende update verwacht om",
        "overdue": "De volgende update is later dan beloofd (verwacht om {time}). We werken eraan.",
        "timeline": "Tijdlijn",
        "corrected_by": "Gecorrigeerd: zie de correctie",
        "correction_of": "Correctie op",
        "retracted": "Ingetrokken",
        "reason": "Reden",
        "thanks": "Met dank aan",
        "live": "Nieuwe berichten verschijnen hier vanzelf.",
        "feed": "Atom-feed",
        "exercise": "OEFENING",
        "updated": "Bijgewerkt",
        "all": "Alle incidenten",
        "language": "English",
        "no_updates": "Nog geen berichten.",
        "areas": "Gebieden",
        "severity.info": "Informatie",
        "severity.advisory": "Let op",
        "severity.warning": "Waarschuwing",
        "severity.emergency": "Noodsituatie",
        "kind.correction": "Correctie",
        "kind.retraction": "Intrekking",
        "kind.all_clear": "Alles veilig",
        "kind.answer": "Vraag en antwoord",
        "kind.update": "",
        "status.active": "Actief",
        "status.monitoring": "We houden het in de gaten",
        "status.resolved": "Afgerond",
    },
    "en": {
        "title": "Current information",
        "active": "Ongoing incidents",
        "none_active": "There are no incidents at the moment.",
        "resolved": "Resolved",
        "next_update": "Next update expected at",
        "overdue": "The next update is later than "
        "promised (expected at {time}). We are working on it.",
        "timeline": "Timeline",
        "corrected_by": "Corrected: see the correction",
        "correction_of": "Correction of",
        "retracted": "Retracted",
        "reason": "Reason",
        "thanks": "Thanks to",
        "live": "New updates appear here automatically.",
        "feed": "Atom feed",
        "exercise": "EXERCISE",
        "updated": "Updated",
        "all": "All incidents",
        "language": "Nederlands",
        "no_updates": "No updates yet.",
        "areas": "Areas",
        "severity.info": "Information",
        "severity.advisory": "Advisory",
        "severity.warning": "Warning",
        "severity.emergency": "Emergency",
        "kind.correction": "Correction",
        "kind.retraction": "Retraction",
        "kind.all_clear": "All clear",
        "kind.answer": "Questions and answers",
        "kind.update": "",
        "status.active": "Active",
        "status.monitoring": "Monitoring",
        "status.resolved": "Resolved",
    },
}


def language_of(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get(COOKIE) or "nl"
    return wanted if wanted in LANGUAGES else "nl"


def translator(language: str):
    texts = TEXTS[language]
    return lambda key, **values: (
        texts.get(key, key).format(**values) if values else texts.get(key, key)
    )


def local_time(value: datetime | None, fmt: str = "%H:%M") -> str:
    return value.astimezone(AMSTERDAM).strftime(fmt) if value else ""
