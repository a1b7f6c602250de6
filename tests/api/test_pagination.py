"""Cursor pagination of the API's lists (issue 17, item 18): newest first, ``limit`` within its
bounds, and a walk over every page that loses and repeats nothing while rows are added."""

from __future__ import annotations

import pytest

from broadcast import paging
from broadcast.questions import service as questions
from tests.support import auth, new_incident, post_update


def _walk(client, token: str, path: str, *, limit: int, between=None) -> tuple[list[int], int]:
    """Follow ``Link: rel=next`` from the first page to the last; ``between(n)`` runs after
    page ``n``. Returns the ids in the order seen and the number of pages."""
    seen: list[int] = []
    url, pages = f"{path}?limit={limit}", 0
    while url:
        response = client.get(url, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= limit
        seen += [item["id"] for item in page]
        pages += 1
        url = _next_url(response)
        if url:
            assert response.headers["X-Next-Cursor"] in url
        if between and url:
            between(pages)
    return seen, pages


def _next_url(response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        assert "X-Next-Cursor" not in response.headers
        return None
    target, relation = link.split(";")
    assert relation.strip() == 'rel="next"'
    return target.strip()[1:-1]


def _ask(client, incident_id: int, n: int) -> int:
    with client.app.state.db.session_scope() as session:
        return questions.receive(
            session, channel="webhook", text=f"Vraag {n}", address=None, incident_id=incident_id
        ).id


def test_incidents_come_newest_first_a_page_at_a_time(client, officer):
    made = [new_incident(client, officer, title=f"Incident {n}")["id"] for n in range(7)]

    seen, pages = _walk(client, officer, "/api/v1/incidents", limit=3)

    assert seen == made[::-1]
    assert pages == 3  # 3 + 3 + 1


def test_incidents_added_between_pages_are_neither_lost_nor_repeated(client, officer):
    before = [new_incident(client, officer, title=f"Oud {n}")["id"] for n in range(6)]
    added: list[int] = []

    def insert(_page: int) -> None:
        added.append(new_incident(client, officer, title=f"Nieuw {len(added)}")["id"])

    seen, _pages = _walk(client, officer, "/api/v1/incidents", limit=2, between=insert)

    assert seen == before[::-1]  # every one that existed, once, in order
    assert len(added) == 2  # after pages 1 and 2; the third page was the last
    first_page = client.get("/api/v1/incidents?limit=2", headers=auth(officer)).json()
    assert [i["id"] for i in first_page] == added[::-1]  # the new ones lead the next walk


def test_questions_and_an_incidents_updates_are_paginated(client, officer):
    incident = new_incident(client, officer)["id"]
    asked = [_ask(client, incident, n) for n in range(5)]
    posted = [post_update(client, officer, incident, body=f"Bericht {n}")["id"] for n in range(5)]

    seen_questions, question_pages = _walk(client, officer, "/api/v1/questions", limit=2)
    seen_updates, update_pages = _walk(
        client, officer, f"/api/v1/incidents/{incident}/updates", limit=2
    )

    assert seen_questions == asked[::-1]
    assert question_pages == 3
    assert seen_updates == posted[::-1]
    assert update_pages == 3


def test_the_default_page_is_documented_and_the_maximum_is_enforced(client, officer):
    made = [new_incident(client, officer, title=f"I{n}")["id"] for n in range(3)]

    everything = client.get("/api/v1/incidents", headers=auth(officer))
    at_most = client.get(f"/api/v1/incidents?limit={paging.MAX_LIMIT}", headers=auth(officer))

    assert [i["id"] for i in everything.json()] == made[::-1]  # within the default of 50
    assert "Link" not in everything.headers
    assert at_most.status_code == 200
    for limit in (0, -1, paging.MAX_LIMIT + 1, "many"):
        for path in ("/api/v1/incidents", "/api/v1/questions", "/api/v1/audit"):
            response = client.get(f"{path}?limit={limit}", headers=auth(officer))
            assert response.status_code == 422, (path, limit, response.text)
            assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    spec = client.get("/openapi.json").json()["paths"]["/api/v1/incidents"]["get"]
    limit_parameter = next(p for p in spec["parameters"] if p["name"] == "limit")
    assert limit_parameter["schema"]["default"] == paging.DEFAULT_LIMIT
    assert limit_parameter["schema"]["maximum"] == paging.MAX_LIMIT
    assert "X-Next-Cursor" in spec["responses"]["200"]["headers"]


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJpZCI6ICJ4In0", paging.encode(0), "e30", "%00%ff"]
)
def test_a_cursor_this_service_did_not_hand_out_is_422(client, officer, cursor):
    new_incident(client, officer)

    response = client.get(f"/api/v1/incidents?cursor={cursor}", headers=auth(officer))

    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["detail"]


def test_a_volunteers_page_counts_only_what_they_may_see(client, officer, token_for):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)["id"]
    published = [post_update(client, officer, incident, body=f"B{n}")["id"] for n in range(3)]
    drafts = [post_update(client, officer, incident, body=f"D{n}", draft=True) for n in range(3)]
    assert {d["state"] for d in drafts} == {"draft"}

    seen, pages = _walk(client, volunteer, f"/api/v1/incidents/{incident}/updates", limit=2)

    assert seen == published[::-1]  # no officer's draft, and no empty page
    assert pages == 2
