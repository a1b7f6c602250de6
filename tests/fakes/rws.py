"""A stand-in for Rijkswaterstaat's WaterWebservices (ddapi20) on 127.0.0.1: the
``ONLINEWAARNEMINGENSERVICES/OphalenWaarnemingen`` endpoint, answered the way the real service
answers according to ``../shared/fixtures/rws/`` (see SOURCES.md there) and Deltares/ddlpy:

- POST only, with a JSON body (another method: ``405``);
- a request names ``Locatie.Code``, ``AquoPlusWaarnemingMetadata.AquoMetadata`` (``Grootheid``,
  ``Eenheid``, ``Hoedanigheid`` codes and ``ProcesType``: ``meting`` when absent,
  ``verwachting`` for forecasts, ``astronomisch``) and a ``Periode`` whose
  ``Begindatumtijd``/``Einddatumtijd`` are written exactly as ``2012-01-27T09:00:00.000+01:00``;
- the answer is ``{"Succesvol": true, "WaarnemingenLijst": [{"Locatie", "AquoMetadata",
  "MetingenLijst": [...]}]}``, each observation as in the fixture (``Meetwaarde.Waarde_Numeriek``,
  ``Tijdstip`` with an offset, ``WaarnemingMetadata.Statuswaarde`` ``Ongecontroleerd`` for live
  data);
- ``204 No Content`` (empty body) when nothing matches;
- ``400`` with ``{"Succesvol": false, "Foutmelding": ..., "WaarnemingenLijst": []}`` for a
  malformed request and for one that would answer more than ``max_observations`` (160,000 on the
  real service; the fixture's message).

    with RwsServer() as rws:
        rws.state.measure("venlo", [(t1, 1290.0), (t2, 1302.0)])
        rws.state.forecast("venlo", [(t3, 1400.0), (t4, 1510.0)])   # replaces the last run
        rws.state.fail_next(500)                                     # an internal error
        ... rws.state.requests  # the JSON bodies received, in order

Nothing about the answer's shape for ``verwachting`` beyond ``ProcesType`` is known from public
material, so forecasts are answered like measurements (``ProcesType`` says which they are).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.server import FakeServer

OBSERVATIONS_PATH = "/ONLINEWAARNEMINGENSERVICES/OphalenWaarnemingen"
TOO_MANY = "Het maximaal aantal waarnemingen ({limit}) is overschreden. Beperk uw request."
# "2012-01-27T09:00:00.000+01:00": the service wants this exact form (ddlpy's endpoints.json).
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
PROCESS_TYPES = ("meting", "verwachting", "astronomisch")
NAMES = {"venlo": "Venlo", "mook": "Mook", "hoekvanholland": "Hoek van Holland"}
CET = timezone(timedelta(hours=1))


@dataclass
class Series:
    unit: str = "cm"
    reference: str = "NAP"
    points: list[tuple[datetime, float]] = field(default_factory=list)


@dataclass
class RwsState:
    # (location, quantity, process type) -> the values the service holds
    series: dict[tuple[str, str, str], Series] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)
    max_observations: int = 160_000
    failures: list[int] = field(default_factory=list)  # statuses of the next answers
    offset: timezone = CET  # the offset the service writes its times with
    lock: threading.Lock = field(default_factory=threading.Lock)

    def measure(
        self,
        location: str,
        points: list[tuple[datetime, float]],
        *,
        quantity: str = "WATHTE",
        unit: str = "cm",
        reference: str = "NAP",
    ) -> None:
        """Add measurements (``meting``); a time already present keeps its first value."""
        with self.lock:
            series = self.series.setdefault((location, quantity, "meting"), Series(unit, reference))
            known = {at for at, _ in series.points}
            series.points.extend((at, v) for at, v in points if at not in known)
            series.points.sort()

    def forecast(
        self,
        location: str,
        points: list[tuple[datetime, float]],
        *,
        quantity: str = "WATHTE",
        unit: str = "cm",
        reference: str = "NAP",
    ) -> None:
        """A new forecast run (``verwachting``): replaces the previous one."""
        with self.lock:
            self.series[(location, quantity, "verwachting")] = Series(
                unit, reference, sorted(points)
            )

    def fail_next(self, status: int = 500, n: int = 1) -> None:
        with self.lock:
            self.failures.extend([status] * n)


def _bad(message: str) -> JSONResponse:
    return JSONResponse(
        {"Succesvol": False, "Foutmelding": message, "WaarnemingenLijst": []}, status_code=400
    )


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not TIME_FORMAT.match(text):
        return None
    return datetime.fromisoformat(text)


def _code(metadata: dict, name: str) -> str | None:
    value = metadata.get(name)
    return value.get("Code") if isinstance(value, dict) else None


def rws_app(state: RwsState):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        with state.lock:
            state.hits[request.url.path] += 1
        response = await _answer(state, request)
        await response(scope, receive, send)

    return app


async def _answer(state: RwsState, request: Request) -> Response:
    if request.url.path != OBSERVATIONS_PATH:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    if request.method != "POST":
        return Response(b"", status_code=405, headers={"Allow": "POST"})
    with state.lock:
        failure = state.failures.pop(0) if state.failures else None
    if failure is not None:
        return Response(b"Internal Server Error", status_code=failure, media_type="text/plain")
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _bad("Het request bevat geen geldige JSON.")
    if not isinstance(body, dict):
        return _bad("Het request bevat geen geldige JSON.")
    with state.lock:
        state.requests.append(body)
    location = (
        (body.get("Locatie") or {}).get("Code") if isinstance(body.get("Locatie"), dict) else None
    )
    metadata = ((body.get("AquoPlusWaarnemingMetadata") or {}).get("AquoMetadata")) or {}
    period = body.get("Periode") or {}
    if not isinstance(location, str) or not location:
        return _bad("Locatie.Code ontbreekt.")
    if not isinstance(metadata, dict) or not _code(metadata, "Grootheid"):
        return _bad("AquoMetadata.Grootheid ontbreekt.")
    process = metadata.get("ProcesType", "meting")
    if process not in PROCESS_TYPES:
        return _bad(f"Onbekend ProcesType: {process}.")
    start, end = _time(period.get("Begindatumtijd")), _time(period.get("Einddatumtijd"))
    if start is None or end is None or start > end:
        return _bad("Periode: Begindatumtijd en Einddatumtijd ongeldig.")
    quantity = _code(metadata, "Grootheid")
    with state.lock:
        series = state.series.get((location, quantity, process))
        points = (
            [] if series is None else [(at, v) for at, v in series.points if start <= at <= end]
        )
        limit = state.max_observations
    if series is not None:
        unit, reference = _code(metadata, "Eenheid"), _code(metadata, "Hoedanigheid")
        if (unit and unit != series.unit) or (reference and reference != series.reference):
            points = []
    if len(points) > limit:
        return _bad(TOO_MANY.format(limit=limit))
    if not points:
        return Response(status_code=204)
    assert series is not None
    answer = {
        "Succesvol": True,
        "WaarnemingenLijst": [
            {
                "Locatie": {
                    "Code": location,
                    "Naam": NAMES.get(location, location),
                    "Coordinatenstelsel": "ETRS89",
                },
                "AquoMetadata": {
                    "ProcesType": process,
                    "Compartiment": {"Code": "OW", "Omschrijving": "Oppervlaktewater"},
                    "Grootheid": {"Code": quantity},
                    "Eenheid": {"Code": series.unit},
                    "Hoedanigheid": {"Code": series.reference},
                },
                "MetingenLijst": [_observation(state, at, value) for at, value in points],
            }
        ],
    }
    return JSONResponse(answer)


def _observation(state: RwsState, at: datetime, value: float) -> dict:
    text = f"{value:g}"
    return {
        "Meetwaarde": {"Waarde_Alfanumeriek": text, "Waarde_Numeriek": value},
        "Tijdstip": at.astimezone(state.offset).isoformat(timespec="milliseconds"),
        "WaarnemingMetadata": {
            "Statuswaarde": "Ongecontroleerd",
            "Bemonsteringshoogte": "-999999999",
            "Referentievlak": "NVT",
            "OpdrachtgevendeInstantie": "RIKZMON_WAT",
            "Kwaliteitswaardecode": "00",
        },
    }


class RwsServer(FakeServer):
    def __init__(self) -> None:
        self.state = RwsState()
        super().__init__(rws_app(self.state))
