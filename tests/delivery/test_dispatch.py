"""How the dispatcher treats what a receiver answers: retry, back off, give up, mark gone."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery.models import Delivery
from broadcast.subscribers.models import Subscriber
from tests.support import auth, new_incident, post_update, token_for, wait_for


def deliveries(client) -> list[Delivery]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.channel == "webhook")))


def subscribe_webhook(client, officer: str, url: str) -> int:
    response = client.post(
        "/api/v1/subscribers",
        headers=auth(officer),
        json={"channel": "webhook", "address": url, "areas": []},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def setup(app_factory, receiver):
    def build(**overrides):
        client = TestClient(app_factory(**overrides))
        client.__enter__()
        officer = token_for(client.app, "officer")
        subscriber_id = subscribe_webhook(client, officer, f"{receiver.url}/resident")
        incident = new_incident(client, officer)
        return client, officer, subscriber_id, incident

    clients = []

    def tracked(**overrides):
        result = build(**overrides)
        clients.append(result[0])
        return result

    yield tracked
    for client in clients:
        client.__exit__(None, None, None)


def test_temporary_failures_are_retried_until_delivered(setup, receiver):
    client, officer, _, incident = setup()
    receiver.state.answer(503, times=2)
    post_update(client, officer, incident["id"])
    row = wait_for(lambda: next((d for d in deliveries(client) if d.state == "delivered"), None))
    assert row.attempts == 3
    assert receiver.state.delivery_ids() == [str(row.id)]


def test_retry_after_is_honoured(setup, receiver):
    client, officer, _, incident = setup()
    receiver.state.answer(429, times=1, **{"Retry-After": "1"})
    post_update(client, officer, incident["id"])
    row = wait_for(lambda: next((d for d in deliveries(client) if d.state == "delivered"), None))
    assert row.attempts == 2
    assert (row.sent_at - row.created_at).total_seconds() >= 0.9  # waited as the receiver asked


def test_a_delivery_is_dead_once_its_time_to_live_is_over(setup, receiver):
    """Given up by time, not by a count: however many attempts fit in its time to live."""
    client, officer, _, incident = setup(delivery_ttl_seconds=0.5, max_attempts=1)
    receiver.state.answer(500, times=100_000)
    update = post_update(client, officer, incident["id"])
    row = wait_for(lambda: next((d for d in deliveries(client) if d.state == "dead"), None))
    assert row.attempts >= 1 and row.sent_at is None
    assert "HTTP 500" in row.last_error
    counts = client.get(f"/api/v1/updates/{update['id']}/deliveries", headers=auth(officer)).json()
    assert counts["webhook"] == {"dead": 1}


def test_resend_failed_requeues_only_failed_and_dead(setup, receiver):
    client, officer, _, incident = setup(delivery_ttl_seconds=0)  # dead at its first failure
    receiver.state.answer(500, times=1)
    update = post_update(client, officer, incident["id"])
    wait_for(lambda: any(d.state == "dead" for d in deliveries(client)))
    response = client.post(f"/api/v1/updates/{update['id']}/resend-failed", headers=auth(officer))
    assert response.json() == {"requeued": 1}
    wait_for(lambda: all(d.state == "delivered" for d in deliveries(client)))
    assert len(receiver.state.received) == 1


def test_permanent_refusal_fails_without_retry(setup, receiver):
    client, officer, _, incident = setup()
    receiver.state.answer(400, times=1)
    post_update(client, officer, incident["id"])
    row = wait_for(lambda: next((d for d in deliveries(client) if d.state == "failed"), None))
    assert row.attempts == 1 and row.last_error == "HTTP 400"


def test_gone_recipient_marks_the_subscriber_gone(setup, receiver):
    client, officer, subscriber_id, incident = setup()
    receiver.state.answer(410, times=1)
    post_update(client, officer, incident["id"])
    wait_for(lambda: any(d.state == "failed" for d in deliveries(client)))
    with client.app.state.db.session_scope() as session:
        assert session.get(Subscriber, subscriber_id).state == "gone"
    gone = client.get("/api/v1/audit", params={"action": "subscriber.gone"}, headers=auth(officer))
    assert [(e["actor"], e["subject"]) for e in gone.json()["items"]] == [
        ("provider", f"subscriber:{subscriber_id}")
    ]
    post_update(client, officer, incident["id"], body="Tweede bericht")
    assert len(deliveries(client)) == 1  # a gone subscriber is not in the next audience


def test_expired_lease_is_claimed_again(setup, app_factory, receiver):
    """A delivery left `sending` by a process that died is sent once its lease expires."""
    from datetime import timedelta

    from broadcast.common import utcnow

    client, officer, _, incident = setup(dispatch=False)
    post_update(client, officer, incident["id"])
    with client.app.state.db.session_scope() as session:
        row = session.exec(select(Delivery).where(Delivery.channel == "webhook")).one()
        row.state, row.claim_token = "sending", "dead-worker"
        row.lease_until = utcnow() - timedelta(seconds=1)
        session.add(row)
    with TestClient(app_factory()) as restarted:
        row = wait_for(
            lambda: next((d for d in deliveries(restarted) if d.state == "delivered"), None)
        )
    assert receiver.state.delivery_ids() == [str(row.id)]
