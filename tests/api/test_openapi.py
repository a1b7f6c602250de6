"""The OpenAPI document tells the truth about errors: one error schema (``ErrorOut``), referenced
by every operation for the statuses its shape implies, and every error the service answers has
that shape, the unexpected 500 included (with the security headers). ``/docs`` and ``/redoc``
work without any network beyond the service, under its CSP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from broadcast.deps import ErrorOut
from tests.fakes.server import FakeServer
from tests.support import auth, chromium, new_incident, new_page, post_update

ERROR_REF = "#/components/schemas/ErrorOut"
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_every_error_response_refers_to_the_one_error_schema(client):
    spec = client.get("/openapi.json").json()
    wrong = [
        (name, status)
        for name, operation in operations(spec)
        for status, response in operation["responses"].items()
        if int(status) >= 400 and name != "GET /healthz"  # its 503 is the health report
        if response.get("content", {}).get("application/json", {}).get("schema")
        != {"$ref": ERROR_REF}
    ]
    assert not wrong
    detail = spec["components"]["schemas"]["ErrorOut"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]  # a sentence, or (422) a list of problems
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_operation_documents_the_statuses_its_shape_implies(client):
    spec = client.get("/openapi.json").json()
    missing = []
    for name, operation in operations(spec):
        documented = set(operation["responses"])
        implied = set()
        if operation.get("security"):
            implied |= {"401"}
        if body := operation.get("requestBody"):
            implied |= {"413", "422"}
            if "application/json" in body["content"]:
                implied |= {"400"}  # FastAPI's answer to a body it cannot decode
        if operation.get("parameters"):
            implied |= {"422"}
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            implied |= {"404"}
        missing += [(name, status) for status in sorted(implied - documented)]
    assert not missing


def test_limits_and_refusals_document_their_headers(client):
    spec = client.get("/openapi.json").json()
    for name, operation in operations(spec):
        responses = operation["responses"]
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], name
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"], name


def error_of(response, status: int) -> ErrorOut:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"detail"}
    return ErrorOut.model_validate(response.json())


def test_every_kind_of_error_answers_the_documented_shape(client, officer, token_for):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])

    assert isinstance(error_of(client.get("/api/v1/incidents"), 401).detail, str)
    assert client.get("/api/v1/incidents").headers["www-authenticate"] == "Bearer"
    error_of(client.get("/api/v1/incidents", headers=auth("not-a-token")), 401)
    error_of(client.get("/api/v1/feeds", headers=auth(volunteer)), 403)
    error_of(client.get("/api/v1/incidents/999999", headers=auth(officer)), 404)
    error_of(client.post(f"/api/v1/updates/{update['id']}/approve", headers=auth(officer)), 409)
    not_allowed = client.put("/api/v1/incidents", headers=auth(officer))
    error_of(not_allowed, 405)
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "POST"}
    static = client.post("/static/site.css")
    assert error_of(static, 405) and static.headers["allow"] == "GET, HEAD"
    not_utf8 = client.post(
        "/api/v1/incidents",
        content=b'{"title": "\xff"}',
        headers=auth(officer) | {"content-type": "application/json"},
    )
    assert not_utf8.status_code in (400, 422)
    error_of(not_utf8, not_utf8.status_code)

    invalid = client.post("/api/v1/incidents", json={"title": ""}, headers=auth(officer))
    problems = error_of(invalid, 422).detail
    assert isinstance(problems, list) and {"title", "severity"} <= {p.loc[-1] for p in problems}
    refused = client.post(  # a rule of the service, not of the schema: a sentence
        "/api/v1/feeds",
        json={"url": "https://example.org/feed.xml", "kind": "level", "interval_seconds": 0},
        headers=auth(officer),
    )
    assert isinstance(error_of(refused, 422).detail, str)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unexpected_failure_answers_json_with_the_security_headers(app_factory):
    app = app_factory(dispatch=False)

    def broken():
        raise RuntimeError("secret internals: /srv/broadcast/data")

    app.add_api_route("/api/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/broken")

    assert error_of(response, 500).detail == "internal error"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock"), ("/redoc", "h2")])
def test_the_interactive_docs_work_offline_under_the_csp(app_factory, path, rendered):
    app = app_factory(dispatch=False)
    with FakeServer(app, lifespan="on") as server, chromium() as browser:
        page = new_page(browser)
        outside, refusals = [], []
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(server.url)
                else (outside.append(route.request.url), route.abort())
            ),
        )
        page.on("console", lambda message: refusals.append(message.text))
        response = page.goto(server.url + path)
        page.wait_for_selector(rendered)
        operations = page.locator(rendered).count()

    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert operations >= 10
    assert not [text for text in refusals if "script-src" in text]
    assert not [url for url in outside if url.endswith((".js", ".css"))]
