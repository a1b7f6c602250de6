"""Subscribers registered through the API: personal data in, never out, and erased on request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.delivery.models import Delivery
from broadcast.questions import service as questions
from broadcast.questions.models import Question
from broadcast.subscribers.models import Subscriber, SubscriberArea
from tests.support import auth, new_incident, post_update

HOOK = "http://127.0.0.1:9/partner/hook"


def _subscribe(client, token: str, **fields):
    body = {"channel": "webhook", "address": HOOK, "areas": ["mook"]} | fields
    return client.post("/api/v1/subscribers", json=body, headers=auth(token))


def test_a_new_subscriber_gets_an_id_and_the_address_is_never_shown(client, officer):
    response = _subscribe(
        client, officer, areas=["mook", "plasmolen"], language="en", min_severity="warning"
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert isinstance(created["id"], int)
    assert created["channel"] == "webhook"
    assert created["areas"] == ["mook", "plasmolen"]
    assert created["language"] == "en"
    assert created["min_severity"] == "warning"
    assert created["state"] == "active"
    assert created["consent_at"] is not None
    assert "address" not in created
    assert "partner/hook" not in response.text
    fetched = client.get(f"/api/v1/subscribers/{created['id']}", headers=auth(officer))
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_defaults_are_dutch_everything_and_the_whole_municipality(client, officer):
    response = client.post(
        "/api/v1/subscribers", json={"channel": "webhook", "address": HOOK}, headers=auth(officer)
    )
    assert response.status_code == 201, response.text
    assert (
        response.json()["language"],
        response.json()["min_severity"],
        response.json()["areas"],
    ) == ("nl", "info", [])


def test_the_same_address_on_the_same_channel_is_a_conflict(client, officer):
    assert _subscribe(client, officer).status_code == 201

    for address in [HOOK, f"  {HOOK}  "]:
        duplicate = _subscribe(client, officer, address=address, areas=["molenhoek"])
        assert duplicate.status_code == 409, (address, duplicate.text)
        assert duplicate.json()["detail"]

    with client.app.state.db.session_scope() as session:
        assert len(session.exec(select(Subscriber)).all()) == 1


def test_invalid_subscriptions_are_rejected_with_422(client, officer):
    cases = {
        "address not a URL": {"address": "not a url"},
        "address without host": {"address": "http://"},
        "address not http": {"address": "ftp://127.0.0.1/hook"},
        "empty address": {"address": ""},
        "unknown area": {"areas": ["atlantis"]},
        "unknown language": {"language": "fr"},
        "unknown severity": {"min_severity": "mild"},
        "unknown channel": {"channel": "pigeon"},
        "channel without individual subscribers": {"channel": "platform"},
        "channel not installed": {"channel": "telegram", "address": "12345"},
    }
    for label, fields in cases.items():
        response = _subscribe(client, officer, **fields)
        assert response.status_code == 422, (label, response.text)
        assert response.json()["detail"], label

    with client.app.state.db.session_scope() as session:
        assert session.exec(select(Subscriber)).all() == []


def test_a_channel_that_is_off_takes_no_subscribers(app_factory, started):
    with started(TestClient(app_factory(channels_enabled=["platform"]))) as client:
        with client.app.state.db.session_scope() as session:
            _, officer = add_user(session, name="olga", role=Role.officer)

        response = _subscribe(client, officer)

        assert response.status_code == 422, response.text
        assert "webhook" in response.json()["detail"]
        assert "not available" in response.json()["detail"]
        assert client.get("/healthz").json()["channels"]["off"] == {
            "webhook": "not in BROADCAST_CHANNELS_ENABLED"
        }


def test_erasing_a_subscriber_removes_the_person_but_keeps_the_counts(
    client, officer, settle, receiver
):
    subscriber = _subscribe(client, officer, address=f"{receiver.url}/s/leaving").json()
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    assert settle(update["id"])["webhook"] == {"delivered": 1}

    response = client.delete(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(officer))

    assert response.status_code == 204
    assert response.content == b""
    with client.app.state.db.session_scope() as session:
        assert session.get(Subscriber, subscriber["id"]) is None
        assert (
            session.exec(
                select(SubscriberArea).where(SubscriberArea.subscriber_id == subscriber["id"])
            ).all()
            == []
        )
        kept = session.exec(
            select(Delivery).where(
                Delivery.update_id == update["id"], Delivery.channel == "webhook"
            )
        ).all()
        assert [(d.subscriber_id, d.target, d.state) for d in kept] == [
            (None, f"s{subscriber['id']}", "delivered")
        ]
        assert all(receiver.url not in (d.target or "") for d in kept)
    assert settle(update["id"])["webhook"] == {"delivered": 1}
    assert (
        client.get(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(officer)).status_code
        == 404
    )
    again = client.delete(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(officer))
    assert again.status_code == 404
    assert again.json()["detail"]


def test_an_erased_address_can_subscribe_again(client, officer):
    first = _subscribe(client, officer).json()
    client.delete(f"/api/v1/subscribers/{first['id']}", headers=auth(officer))

    again = _subscribe(client, officer, areas=["middelaar"])

    assert again.status_code == 201, again.text
    assert again.json()["areas"] == ["middelaar"]


def test_erasing_a_subscriber_removes_their_address_from_their_questions(client, officer):
    subscriber = _subscribe(client, officer).json()
    with client.app.state.db.session_scope() as session:
        asked = questions.receive(
            session, channel="webhook", address=HOOK, text="Mag ik naar huis?"
        ).id
        other = questions.receive(
            session, channel="webhook", address="http://127.0.0.1:9/other", text="En ik?"
        ).id

    client.delete(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(officer))

    with client.app.state.db.session_scope() as session:
        assert session.get(Question, asked).address is None
        assert session.get(Question, asked).text == "Mag ik naar huis?"
        assert session.get(Question, other).address == "http://127.0.0.1:9/other"
