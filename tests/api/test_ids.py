"""Ids out of the database's range (PostgreSQL ``integer``, SQLite 64 bits), zero and negative
ones: every route with an integer in its path answers 404 (or 401/403/422 before it looks), never
500, for anonymous visitors and for a signed-in officer; id fields of bodies and forms are 422."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient

from broadcast.deps import MAX_ID
from tests.support import auth, new_incident, token_for

HOSTILE_IDS = [2147483648, 9223372036854775808, 0, -1]
ORIGIN = "http://testserver"


def routes_of(app) -> list:
    """Every route with its full path; newer FastAPI nests included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as such
        return [r for r in app.routes if getattr(r, "dependant", None) is not None]
    return [r for r in iter_route_contexts(app.routes) if getattr(r, "dependant", None)]


def integer_routes(app) -> list[tuple[object, list[str]]]:
    found = []
    for route in routes_of(app):
        names = [p.name for p in route.dependant.path_params if p.field_info.annotation is int]
        if names:
            found.append((route, names))
    return found


def bounds(param) -> tuple[int | None, int | None]:
    ge = next((m.ge for m in param.field_info.metadata if hasattr(m, "ge")), None)
    le = next((m.le for m in param.field_info.metadata if hasattr(m, "le")), None)
    return ge, le


def fill(path: str, names: list[str], value: int) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: str(value) if m[1] in names else "x", path)


@pytest.fixture
def signed_in(client):
    """The client with an officer's API token and console session (and its CSRF token)."""
    token = token_for(client.app, "officer", name="lotte")
    response = client.post(
        "/console/login",
        data={"username": "lotte", "password": "correct horse", "next": "/console"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/console")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]
    return {"Origin": ORIGIN, "X-CSRF-Token": csrf} | auth(token)


def test_every_integer_path_parameter_is_bounded_to_the_id_range(client):
    routes = integer_routes(client.app)
    assert len(routes) >= 25, [r.path for r, _ in routes]  # API, public, CAP, media, console
    unbounded = [
        (route.path, p.name)
        for route, names in routes
        for p in route.dependant.path_params
        if p.name in names and bounds(p) != (1, MAX_ID)
    ]
    assert unbounded == []


def test_out_of_range_ids_are_never_a_server_error(client, signed_in):
    new_incident(client, signed_in["Authorization"].removeprefix("Bearer "))
    anonymous = TestClient(client.app)  # no cookie, no token
    answers: dict[str, set[int]] = {}
    for route, names in integer_routes(client.app):
        for method, value in itertools.product(sorted(route.methods - {"HEAD"}), HOSTILE_IDS):
            url = fill(route.path, names, value)
            for who, caller, headers in (
                ("anonymous", anonymous, {"Origin": ORIGIN}),
                ("officer", client, signed_in),
            ):
                response = caller.request(method, url, headers=headers, follow_redirects=False)
                key = f"{who} {method} {route.path}"
                answers.setdefault(key, set()).add(response.status_code)
                assert response.status_code < 500, (key, value, response.text[:300])
    # Officers get 404 wherever nothing but the id is wrong (a required body adds a 422).
    officer_gets = {k: v for k, v in answers.items() if k.startswith("officer GET")}
    assert len(officer_gets) >= 10
    assert {k: v for k, v in officer_gets.items() if v != {404}} == {}
    anonymous_codes = set().union(*(v for k, v in answers.items() if k.startswith("anonymous")))
    assert anonymous_codes <= {303, 401, 403, 404, 422}, anonymous_codes


@pytest.mark.parametrize(
    "path",
    [
        "/u/9223372036854775808",
        "/updates/9223372036854775808.cap",
        "/u/2147483648",
        "/updates/2147483648.cap",
        "/u/0",
    ],
)
def test_public_links_with_impossible_ids_are_not_found(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}


def test_a_resident_following_an_impossible_link_gets_the_dutch_page(client):
    response = client.get("/u/9223372036854775808", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_api_answers_404_with_the_json_shape(client):
    token = token_for(client.app, "officer", name="olga")
    response = client.get("/api/v1/incidents/2147483648", headers=auth(token))
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}
    assert client.get("/api/v1/incidents/abc", headers=auth(token)).status_code == 422


@pytest.mark.parametrize("value", [2147483648, 9223372036854775808, 0, -1])
def test_id_fields_of_bodies_are_refused_with_422(client, value):
    token = token_for(client.app, "officer", name="olga")
    feed = client.post(
        "/api/v1/feeds",
        headers=auth(token),
        json={"url": "http://127.0.0.1:9/x", "kind": "level", "interval_seconds": 600,
              "incident_id": value},
    )  # fmt: skip
    assert feed.status_code == 422 and feed.json()["detail"][0]["loc"][-1] == "incident_id"
    answer = client.post(
        "/api/v1/questions/1/answer",
        headers=auth(token),
        json={"body": "Ja.", "public": True, "incident_id": value},
    )
    assert answer.status_code == 422, answer.text
    interval = client.post(
        "/api/v1/feeds",
        headers=auth(token),
        json={"url": "http://127.0.0.1:9/x", "kind": "level", "interval_seconds": 2**63},
    )
    assert interval.status_code == 422


def test_the_console_says_so_in_dutch(client, signed_in):
    page = client.get("/console/incidents/2147483648", headers=signed_in)
    assert page.status_code == 404 and "niet gevonden" in page.text
