"""The Rijkswaterstaat stand-in, driven with httpx the way any client drives the real service;
its answers are checked against the shapes in ../shared/fixtures/rws/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.rws import OBSERVATIONS_PATH, RwsServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rws"
T0 = datetime(2021, 7, 15, 22, 0, tzinfo=UTC)


@pytest.fixture
def rws() -> Iterator[RwsServer]:
    with RwsServer() as server:
        yield server


def body(location="venlo", process=None, start="2021-07-15T23:00:00.000+01:00", end=None):
    metadata = {"Grootheid": {"Code": "WATHTE"}, "Hoedanigheid": {"Code": "NAP"}}
    if process:
        metadata["ProcesType"] = process
    return {
        "Locatie": {"Code": location},
        "AquoPlusWaarnemingMetadata": {"AquoMetadata": metadata},
        "Periode": {
            "Begindatumtijd": start,
            "Einddatumtijd": end or "2021-07-16T05:00:00.000+01:00",
        },
    }


def test_answers_are_shaped_like_the_fixtures(rws: RwsServer) -> None:
    rws.state.measure("venlo", [(T0, 1290.0), (T0 + timedelta(minutes=10), 1291.0)])
    answer = httpx.post(rws.url + OBSERVATIONS_PATH, json=body())
    assert answer.status_code == 200
    document = answer.json()
    assert document["Succesvol"] is True
    [series] = document["WaarnemingenLijst"]
    assert series["AquoMetadata"]["ProcesType"] == "meting"
    assert series["AquoMetadata"]["Eenheid"]["Code"] == "cm"
    excerpt = json.loads(
        (FIXTURES / "metingenlijst_hoekvanholland_2023-01-01_excerpt.json").read_text()
    )
    first = series["MetingenLijst"][0]
    assert set(first) == set(excerpt[0])
    assert set(first["WaarnemingMetadata"]) == set(excerpt[0]["WaarnemingMetadata"])
    assert set(first["Meetwaarde"]) == set(excerpt[0]["Meetwaarde"])
    assert first["WaarnemingMetadata"]["Statuswaarde"] == "Ongecontroleerd"  # live data
    assert first["Tijdstip"] == "2021-07-15T23:00:00.000+01:00"  # with its offset
    assert first["Meetwaarde"]["Waarde_Numeriek"] == 1290.0


def test_post_only_204_without_data_and_400s(rws: RwsServer) -> None:
    url = rws.url + OBSERVATIONS_PATH
    assert httpx.get(url).status_code == 405
    empty = httpx.post(url, json=body())
    assert empty.status_code == 204 and empty.content == b""
    garbage = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["Succesvol"] is False
    sloppy = httpx.post(url, json=body(start="2021-07-15T23:00:00+01:00"))  # no milliseconds
    assert sloppy.status_code == 400 and "Periode" in sloppy.json()["Foutmelding"]
    rws.state.measure("venlo", [(T0 + timedelta(minutes=k), 1200.0 + k) for k in range(5)])
    rws.state.max_observations = 3
    too_many = httpx.post(url, json=body())
    expected = json.loads((FIXTURES / "error_400_too_many_observations.json").read_text())
    assert too_many.status_code == 400
    assert too_many.json() == expected | {
        "Foutmelding": expected["Foutmelding"].replace("160000", "3")
    }
    rws.state.fail_next(500)
    assert httpx.post(url, json=body()).status_code == 500


def test_forecasts_are_apart_and_replaced_by_each_run(rws: RwsServer) -> None:
    url = rws.url + OBSERVATIONS_PATH
    rws.state.measure("venlo", [(T0, 1290.0)])
    rws.state.forecast("venlo", [(T0 + timedelta(hours=2), 1400.0)])
    rws.state.forecast("venlo", [(T0 + timedelta(hours=3), 1450.0)])
    [series] = httpx.post(url, json=body(process="verwachting")).json()["WaarnemingenLijst"]
    assert series["AquoMetadata"]["ProcesType"] == "verwachting"
    assert [m["Meetwaarde"]["Waarde_Numeriek"] for m in series["MetingenLijst"]] == [1450.0]
    [measured] = httpx.post(url, json=body(process="meting")).json()["WaarnemingenLijst"]
    assert [m["Meetwaarde"]["Waarde_Numeriek"] for m in measured["MetingenLijst"]] == [1290.0]
    assert rws.state.requests[0]["Locatie"] == {"Code": "venlo"}
