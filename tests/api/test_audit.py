"""The audit log through the API (issue 17, item 12): every action recorded, filtered by who,
what, incident and time, paginated, and exported as CSV without residents' personal data."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlmodel import select

from broadcast.audit import AuditEvent
from broadcast.questions import service as questions
from tests.support import auth, new_incident, post_update

RESIDENT = "http://127.0.0.1:9/resident-jansen"
QUESTION = "Mag ik mijn kelder leegpompen bij Mookerheide 12?"


def _audit(client, token: str, **query) -> dict:
    response = client.get("/api/v1/audit", params=query, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def _actions(page: dict) -> list[str]:
    return [e["action"] for e in page["items"]]


def test_resend_failed_through_the_api_is_recorded(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])

    response = client.post(f"/api/v1/updates/{update['id']}/resend-failed", headers=auth(officer))

    assert response.status_code == 200, response.text
    (event,) = _audit(client, officer, action="update.resend_failed")["items"]
    assert event["actor"] == "olga"
    assert event["subject"] == f"update:{update['id']}"
    assert event["detail"] == {"requeued": response.json()["requeued"]}


def test_the_log_is_filtered_by_who_what_incident_and_time(client, officer, token_for):
    other = token_for("officer", "otto")
    flood = new_incident(client, officer, title="Hoogwater")
    storm = new_incident(client, other, title="Storm")
    on_flood = post_update(client, officer, flood["id"])
    post_update(client, other, storm["id"])
    with client.app.state.db.session_scope() as session:
        asked = questions.receive(
            session, channel="webhook", text=QUESTION, address=RESIDENT, incident_id=flood["id"]
        ).id

    by_otto = _audit(client, officer, user="otto")
    about_flood = _audit(client, officer, incident_id=flood["id"])
    updates_only = _audit(client, officer, action="update")
    otto_on_flood = _audit(client, officer, user="otto", incident_id=flood["id"])

    assert {e["actor"] for e in by_otto["items"]} == {"otto"}
    assert _actions(by_otto) == ["update.publish", "update.post", "incident.create"]
    assert {e["subject"] for e in about_flood["items"]} == {
        f"incident:{flood['id']}",
        f"update:{on_flood['id']}",
        f"question:{asked}",
    }
    assert {a.split(".")[0] for a in _actions(updates_only)} == {"update"}
    assert len(updates_only["items"]) == 4  # post and publish, twice
    assert otto_on_flood == {"items": [], "next_cursor": None}

    with client.app.state.db.session_scope() as session:
        moments = sorted(session.exec(select(AuditEvent.at)))
    middle = moments[len(moments) // 2]
    early = _audit(client, officer, until=middle.isoformat())["items"]
    late = _audit(client, officer, since=middle.isoformat())["items"]
    assert early and late
    assert len(early) + len(late) == len(moments)  # until is exclusive, since inclusive
    assert all(e["at"] < late[-1]["at"] for e in early)
    future = (moments[-1] + timedelta(days=1)).isoformat()
    assert _audit(client, officer, since=future)["items"] == []


def test_the_log_is_paginated_with_next_cursor(client, officer):
    for n in range(4):
        new_incident(client, officer, title=f"I{n}")

    first = _audit(client, officer, action="incident.create", limit=3)
    second = _audit(client, officer, action="incident.create", limit=3, cursor=first["next_cursor"])

    assert len(first["items"]) == 3
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)


def test_the_csv_export_holds_the_log_and_no_resident_data(client, officer):
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"])
    with client.app.state.db.session_scope() as session:
        questions.receive(
            session, channel="webhook", text=QUESTION, address=RESIDENT, incident_id=incident["id"]
        )
    subscriber = client.post(
        "/api/v1/subscribers",
        json={"channel": "webhook", "address": RESIDENT + "/hook", "areas": ["mook"]},
        headers=auth(officer),
    )
    assert subscriber.status_code == 201, subscriber.text

    response = client.get(
        "/api/v1/audit", headers=auth(officer) | {"Accept": "text/csv"}, params={"limit": 1}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in rows][:2] == ["subscriber.subscribe", "question.receive"]
    assert len(rows) == len(_audit(client, officer, limit=200)["items"])  # the whole log
    assert RESIDENT not in response.text
    assert "kelder" not in response.text


def test_volunteers_may_not_read_the_log(client, officer, token_for):
    volunteer = token_for("volunteer", "vera")

    response = client.get("/api/v1/audit", headers=auth(volunteer))

    assert response.status_code == 403
