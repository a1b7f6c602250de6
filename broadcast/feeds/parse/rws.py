"""Rijkswaterstaat WaterWebservices (ddapi20): the request bodies of ``OphalenWaarnemingen`` and
the reading of its answers.

A request names the location code, the Aquo metadata (``Grootheid`` ``WATHTE``, ``Hoedanigheid``
``NAP``, ``ProcesType`` ``meting`` for measurements or ``verwachting`` for a forecast) and a
period whose times the service wants in exactly the form ``2012-01-27T09:00:00.000+01:00``.
An answer is ``{"Succesvol": true, "WaarnemingenLijst": [{"Locatie", "AquoMetadata",
"MetingenLijst": [{"Meetwaarde": {"Waarde_Numeriek"}, "Tijdstip", "WaarnemingMetadata"}]}]}``;
``204 No Content`` means no data in the period. The unit is the one the answer's
``AquoMetadata.Eenheid`` names (``cm`` for water levels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from broadcast.feeds.parse.parsing import FeedError, Reading

OBSERVATIONS = "/ONLINEWAARNEMINGENSERVICES/OphalenWaarnemingen"
MEASUREMENT = "meting"
FORECAST = "verwachting"
DEFAULT_QUANTITY = "WATHTE"
DEFAULT_REFERENCE = "NAP"
# The service writes and reads its times with an offset; +01:00 is the form of its examples.
SERVICE_OFFSET = timezone(timedelta(hours=1))
# Sentinel Rijkswaterstaat uses for "no value" in numeric fields (as in Bemonsteringshoogte).
NO_VALUE = 999_999_999


@dataclass(frozen=True)
class Observation:
    at: datetime  # aware, UTC
    value: float


@dataclass(frozen=True)
class Answer:
    observations: list[Observation]  # oldest first, one per time
    unit: str | None
    station: str | None
    warnings: list[str]


def service_time(moment: datetime) -> str:
    """``2021-07-16T06:00:00.000+01:00``: the exact form the service accepts (whole seconds:
    its examples always end in ``.000``)."""
    whole = moment.astimezone(SERVICE_OFFSET).replace(microsecond=0)
    return whole.isoformat(timespec="milliseconds")


def request_body(
    *,
    location: str,
    quantity: str,
    reference: str,
    process: str,
    start: datetime,
    end: datetime,
) -> dict:
    return {
        "Locatie": {"Code": location},
        "AquoPlusWaarnemingMetadata": {
            "AquoMetadata": {
                "Compartiment": {"Code": "OW"},
                "Grootheid": {"Code": quantity},
                "Hoedanigheid": {"Code": reference},
                "ProcesType": process,
            }
        },
        "Periode": {"Begindatumtijd": service_time(start), "Einddatumtijd": service_time(end)},
    }


def parse_answer(content: bytes) -> Answer:
    """The observations of an answer (empty content: a ``204``, no data). ``FeedError`` for an
    answer that says it failed or that is not the service's shape."""
    if not content.strip():
        return Answer([], None, None, [])
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise FeedError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or "WaarnemingenLijst" not in document:
        raise FeedError("not an OphalenWaarnemingen answer (no WaarnemingenLijst)")
    if document.get("Succesvol") is False:
        raise FeedError(f"the service says: {str(document.get('Foutmelding') or '?')[:300]}")
    found: dict[datetime, float] = {}
    warnings: list[str] = []
    unit = station = None
    for series in document["WaarnemingenLijst"] or []:
        if not isinstance(series, dict):
            continue
        metadata = series.get("AquoMetadata") or {}
        unit = unit or _code(metadata, "Eenheid")
        station = station or (series.get("Locatie") or {}).get("Naam")
        for item in series.get("MetingenLijst") or []:
            observation = _observation(item, warnings)
            if observation is not None:
                found.setdefault(observation.at, observation.value)
    observations = [Observation(at, value) for at, value in sorted(found.items())]
    return Answer(observations, unit, station, warnings)


def _code(metadata: object, name: str) -> str | None:
    value = metadata.get(name) if isinstance(metadata, dict) else None
    code = value.get("Code") if isinstance(value, dict) else None
    return str(code) if code else None


def _observation(item: object, warnings: list[str]) -> Observation | None:
    if not isinstance(item, dict):
        return None
    text = item.get("Tijdstip")
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        warnings.append(f"observation with an unreadable Tijdstip {str(text)[:40]!r}; skipped")
        return None
    if at.tzinfo is None:
        warnings.append(f"observation at {text} without an offset; skipped")
        return None
    value = (item.get("Meetwaarde") or {}).get("Waarde_Numeriek")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    if abs(value) >= NO_VALUE:  # the service's "no value"
        return None
    return Observation(at.astimezone(UTC), float(value))


def readings(answer: Answer, *, location: str, quantity: str) -> list[Reading]:
    """Measurements as readings; the key (location, quantity, time) is stable across polls."""
    return [
        Reading(
            key=f"rws:{location}:{quantity}:{o.at.isoformat()}",
            value=o.value,
            unit=answer.unit,
            observed_at=o.at,
            station=answer.station,
            title=None,
        )
        for o in answer.observations
    ]
