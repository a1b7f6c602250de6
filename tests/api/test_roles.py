"""Who may do what: anonymous callers, invalid tokens, volunteers and officers."""

from __future__ import annotations

import pytest

from broadcast import audit
from broadcast.questions import service as questions
from tests.support import auth, new_incident, post_update

SUBSCRIBER = {"channel": "webhook", "address": "http://127.0.0.1:9/hook", "areas": ["mook"]}

# Every endpoint that changes something, plus the listings that need a token.
# Placeholders are filled with ids of objects that exist, so a 401 cannot hide a 404.
PROTECTED = [
    ("POST", "/api/v1/incidents", {"title": "Stormschade", "severity": "info", "areas": []}),
    ("GET", "/api/v1/incidents", None),
    ("GET", "/api/v1/incidents/{incident}", None),
    ("POST", "/api/v1/incidents/{incident}/updates", {"body": "Het water stijgt."}),
    ("POST", "/api/v1/incidents/{incident}/resolve", {"body": "Alles veilig."}),
    ("GET", "/api/v1/updates/{update}", None),
    ("POST", "/api/v1/updates/{update}/approve", None),
    ("POST", "/api/v1/updates/{update}/reject", {"reason": "nee"}),
    ("POST", "/api/v1/updates/{update}/correct", {"body": "Het water daalt."}),
    ("POST", "/api/v1/updates/{update}/retract", {"reason": "Onjuist."}),
    ("POST", "/api/v1/updates/{update}/resend-failed", None),
    ("GET", "/api/v1/updates/{update}/deliveries", None),
    ("POST", "/api/v1/subscribers", SUBSCRIBER | {"address": "http://127.0.0.1:9/other"}),
    ("GET", "/api/v1/subscribers/{subscriber}", None),
    ("DELETE", "/api/v1/subscribers/{subscriber}", None),
    ("GET", "/api/v1/questions", None),
    ("POST", "/api/v1/questions/{question}/answer", {"body": "Ja.", "public": False}),
    ("GET", "/api/v1/incidents/{incident}/updates", None),
    ("GET", "/api/v1/audit", None),
]

# What a volunteer may not do; "proposal" is a volunteer's update waiting for approval.
OFFICER_ONLY = [
    ("POST", "/api/v1/incidents", {"title": "Stormschade", "severity": "info", "areas": []}),
    ("POST", "/api/v1/updates/{proposal}/approve", None),
    ("POST", "/api/v1/updates/{proposal}/reject", {"reason": "nee"}),
    ("POST", "/api/v1/updates/{update}/correct", {"body": "Het water daalt."}),
    ("POST", "/api/v1/updates/{update}/retract", {"reason": "Onjuist."}),
    ("POST", "/api/v1/incidents/{incident}/resolve", {"body": "Alles veilig."}),
    ("POST", "/api/v1/subscribers", SUBSCRIBER | {"address": "http://127.0.0.1:9/other"}),
    ("GET", "/api/v1/subscribers/{subscriber}", None),
    ("DELETE", "/api/v1/subscribers/{subscriber}", None),
    ("GET", "/api/v1/questions", None),
    ("POST", "/api/v1/questions/{question}/answer", {"body": "Ja.", "public": False}),
    ("GET", "/api/v1/updates/{update}/deliveries", None),
    ("POST", "/api/v1/updates/{update}/resend-failed", None),
    ("GET", "/api/v1/audit", None),
]


def _world(client, officer: str) -> dict[str, int]:
    """One of everything: an incident with a published update, a subscriber, a question."""
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    subscriber = client.post("/api/v1/subscribers", json=SUBSCRIBER, headers=auth(officer))
    assert subscriber.status_code == 201, subscriber.text
    with client.app.state.db.session_scope() as session:
        question = questions.receive(
            session,
            channel="webhook",
            text="Is de Heumensebaan open?",
            address="http://127.0.0.1:9/resident",
            incident_id=incident["id"],
        ).id
    return {
        "incident": incident["id"],
        "update": update["id"],
        "subscriber": subscriber.json()["id"],
        "question": question,
    }


def _call(client, method: str, path: str, body, headers: dict[str, str]):
    return client.request(method, path, json=body, headers=headers)


def _state_of(client, officer: str, ids: dict[str, int]) -> tuple:
    incident = client.get(f"/api/v1/incidents/{ids['incident']}", headers=auth(officer)).json()
    incidents = client.get("/api/v1/incidents", headers=auth(officer)).json()
    questions_ = client.get("/api/v1/questions", headers=auth(officer)).json()
    subscriber = client.get(f"/api/v1/subscribers/{ids['subscriber']}", headers=auth(officer))
    return (
        len(incidents),
        incident["status"],
        sorted((u["id"], u["state"]) for u in incident["updates"]),
        [q["state"] for q in questions_],
        subscriber.status_code,
    )


def test_anonymous_callers_get_401_with_detail_and_change_nothing(client, officer):
    ids = _world(client, officer)
    before = _state_of(client, officer, ids)

    for method, path, body in PROTECTED:
        response = _call(client, method, path.format(**ids), body, headers={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["detail"], (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer", (method, path)

    assert _state_of(client, officer, ids) == before


def test_an_invalid_or_malformed_token_gets_401(client, officer):
    ids = _world(client, officer)
    before = _state_of(client, officer, ids)
    bad_headers = [
        {"Authorization": "Bearer bc_not-a-real-token"},
        {"Authorization": f"Bearer {officer}x"},
        {"Authorization": f"Basic {officer}"},
        {"Authorization": officer},
    ]
    for headers in bad_headers:
        for method, path, body in PROTECTED:
            response = _call(client, method, path.format(**ids), body, headers=headers)
            assert response.status_code == 401, (headers, method, path, response.text)
            assert "detail" in response.json()

    assert _state_of(client, officer, ids) == before


def test_a_deactivated_users_token_no_longer_works(client, token_for, officer):
    from sqlmodel import select

    from broadcast.auth.models import User

    volunteer = token_for("volunteer", "vera")
    assert client.get("/api/v1/incidents", headers=auth(volunteer)).status_code == 200
    with client.app.state.db.session_scope() as session:
        session.exec(select(User).where(User.name == "vera")).one().active = False

    response = client.get("/api/v1/incidents", headers=auth(volunteer))
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.parametrize("fields", [{}, {"draft": True}], ids=["proposal", "as a draft"])
def test_a_volunteers_update_waits_for_approval_and_is_not_sent(
    client, token_for, officer, settle, fields
):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)

    proposal = post_update(
        client, volunteer, incident["id"], body="Water in de Zandstraat.", **fields
    )
    assert proposal["state"] == "pending_approval"
    assert proposal["published_at"] is None
    assert proposal["source"] == "volunteer"

    sentinel = post_update(client, officer, incident["id"], body="Controle.")
    settle(sentinel["id"])
    deliveries = client.get(f"/api/v1/updates/{proposal['id']}/deliveries", headers=auth(officer))
    assert deliveries.json() == {}


def test_volunteers_may_not_do_what_only_officers_may(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    ids = _world(client, officer)
    ids["proposal"] = post_update(client, volunteer, ids["incident"])["id"]
    before = _state_of(client, officer, ids)

    for method, path, body in OFFICER_ONLY:
        response = _call(client, method, path.format(**ids), body, headers=auth(volunteer))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["detail"], (method, path)

    assert _state_of(client, officer, ids) == before


def test_officers_may_do_all_of_it(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    ids = _world(client, officer)
    ids["proposal"] = post_update(client, volunteer, ids["incident"])["id"]
    ids["other_proposal"] = post_update(client, volunteer, ids["incident"])["id"]
    ids["second"] = post_update(client, officer, ids["incident"], body="Tweede bericht.")["id"]

    steps = [
        ("POST", "/api/v1/incidents", {"title": "Storm", "severity": "info", "areas": []}, 201),
        ("POST", "/api/v1/updates/{proposal}/approve", None, 200),
        ("POST", "/api/v1/updates/{other_proposal}/reject", {"reason": "dubbel"}, 200),
        ("POST", "/api/v1/updates/{update}/correct", {"body": "Het water daalt."}, 201),
        ("POST", "/api/v1/updates/{second}/retract", {"reason": "Onjuist."}, 201),
        ("GET", "/api/v1/updates/{update}/deliveries", None, 200),
        ("POST", "/api/v1/updates/{update}/resend-failed", None, 200),
        ("POST", "/api/v1/subscribers", SUBSCRIBER | {"address": "http://127.0.0.1:9/b"}, 201),
        ("GET", "/api/v1/subscribers/{subscriber}", None, 200),
        ("DELETE", "/api/v1/subscribers/{subscriber}", None, 204),
        ("GET", "/api/v1/questions", None, 200),
        ("POST", "/api/v1/questions/{question}/answer", {"body": "Ja.", "public": False}, 201),
        ("POST", "/api/v1/incidents/{incident}/resolve", {"body": "Alles veilig."}, 201),
    ]
    for method, path, body, expected in steps:
        response = _call(client, method, path.format(**ids), body, headers=auth(officer))
        assert response.status_code == expected, (method, path, response.text)


def test_approval_publishes_and_rejection_rejects(client, token_for, officer, settle):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    good = post_update(client, volunteer, incident["id"], body="Zandzakken bij de kerk.")
    bad = post_update(client, volunteer, incident["id"], body="Geruchten over de dijk.")

    approved = client.post(f"/api/v1/updates/{good['id']}/approve", headers=auth(officer))
    rejected = client.post(
        f"/api/v1/updates/{bad['id']}/reject",
        json={"reason": "niet bevestigd"},
        headers=auth(officer),
    )

    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "published"
    assert approved.json()["published_at"] is not None
    assert settle(good["id"]) == {"platform": {"delivered": 1}}
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["reason"] == "niet bevestigd"
    assert client.get(f"/api/v1/updates/{bad['id']}/deliveries", headers=auth(officer)).json() == {}


def test_a_decision_is_final(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    approved = post_update(client, volunteer, incident["id"])
    rejected = post_update(client, volunteer, incident["id"])
    client.post(f"/api/v1/updates/{approved['id']}/approve", headers=auth(officer))
    client.post(f"/api/v1/updates/{rejected['id']}/reject", headers=auth(officer))

    for update_id, action in [
        (approved["id"], "approve"),
        (approved["id"], "reject"),
        (rejected["id"], "approve"),
        (rejected["id"], "reject"),
    ]:
        response = client.post(f"/api/v1/updates/{update_id}/{action}", headers=auth(officer))
        assert response.status_code == 409, (update_id, action, response.text)
        assert response.json()["detail"]


def test_a_volunteer_sees_published_updates_and_own_proposals_only(client, token_for, officer):
    anna = token_for("volunteer", "anna")
    bert = token_for("volunteer", "bert")
    incident = new_incident(client, officer)
    published = post_update(client, officer, incident["id"], body="Gepubliceerd.")
    draft = post_update(client, officer, incident["id"], body="Concept.", draft=True)
    own = post_update(client, anna, incident["id"], body="Van Anna.")
    other = post_update(client, bert, incident["id"], body="Van Bert.")

    def visible(token: str) -> set[int]:
        response = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(token))
        assert response.status_code == 200, response.text
        return {u["id"] for u in response.json()["updates"]}

    assert draft["state"] == "draft"
    assert visible(anna) == {published["id"], own["id"]}
    assert visible(bert) == {published["id"], other["id"]}
    assert visible(officer) == {published["id"], draft["id"], own["id"], other["id"]}
    assert client.get(f"/api/v1/updates/{other['id']}", headers=auth(anna)).status_code == 404
    assert client.get(f"/api/v1/updates/{own['id']}", headers=auth(anna)).status_code == 200


def test_the_volunteer_is_credited_by_display_name_on_the_published_update(
    client, token_for, officer
):
    volunteer = token_for("volunteer", "anna", display_name="Anna de Vries")
    incident = new_incident(client, officer)
    proposal = post_update(client, volunteer, incident["id"], body="Zandzakken bij de kerk.")
    client.post(f"/api/v1/updates/{proposal['id']}/approve", headers=auth(officer))

    incident = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    updates = incident["updates"]
    published = next(u for u in updates if u["id"] == proposal["id"])
    assert published["state"] == "published"
    assert published["credit"] == "Anna de Vries"
    assert published["source"] == "volunteer"
    page = client.get(f"/incidents/{incident['slug']}")
    assert "Anna de Vries" in page.text


def test_an_officers_own_update_carries_no_credit(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    assert update["credit"] is None
    assert update["source"] == "officer"


def test_state_changes_are_audited_with_actor(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    approved = post_update(client, volunteer, incident["id"])
    rejected = post_update(client, volunteer, incident["id"])
    client.post(f"/api/v1/updates/{approved['id']}/approve", headers=auth(officer))
    client.post(
        f"/api/v1/updates/{rejected['id']}/reject", json={"reason": "dubbel"}, headers=auth(officer)
    )
    correction = client.post(
        f"/api/v1/updates/{approved['id']}/correct", json={"body": "Anders."}, headers=auth(officer)
    ).json()
    client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Klaar."},
        headers=auth(officer),
    )

    def actions(subject: str) -> list[tuple[str, str]]:
        with client.app.state.db.session_scope() as session:
            return sorted((e.action, e.actor) for e in audit.recent(session, subject=subject))

    assert actions(f"incident:{incident['id']}") == [
        ("incident.create", "olga"),
        ("incident.resolve", "olga"),
    ]
    assert actions(f"update:{approved['id']}") == [
        ("update.approve", "olga"),
        ("update.correction", "olga"),
        ("update.post", "vera"),
        ("update.publish", "olga"),
    ]
    assert actions(f"update:{rejected['id']}") == [
        ("update.post", "vera"),
        ("update.reject", "olga"),
    ]
    assert actions(f"update:{correction['id']}") == [("update.publish", "olga")]
    with client.app.state.db.session_scope() as session:
        reject = next(
            e
            for e in audit.recent(session, subject=f"update:{rejected['id']}")
            if e.action == "update.reject"
        )
        assert reject.detail["reason"] == "dubbel"
        assert reject.actor_id is not None
