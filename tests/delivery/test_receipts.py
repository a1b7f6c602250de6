"""Provider status callbacks, including one that beats the dispatcher's own write-back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery import outbox, receipts
from broadcast.delivery.models import Delivery, EarlyReceipt
from broadcast.delivery.outbox import Outcome
from tests.support import new_incident, post_update, token_for


def record_sent(db, provider_id: str) -> None:
    with db.session_scope() as session:
        (job,) = outbox.claim(session, "platform", limit=10, lease_seconds=30, public_url="x")
    with db.session_scope() as session:
        outbox.record(
            session,
            [Outcome(job, "sent", provider_id=provider_id)],
            max_attempts=3,
            retry_base=1,
            retry_cap=1,
        )


def delivery(db) -> Delivery:
    with db.session_scope() as session:
        return session.exec(select(Delivery).where(Delivery.channel == "platform")).one()


def test_status_arriving_before_the_send_is_recorded_is_applied_later(app_factory):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        with db.session_scope() as session:
            assert receipts.apply_status(
                session,
                channel="platform",
                provider_id="SM1",
                status="undelivered",
                error="30003 unreachable",
            )
        record_sent(db, "SM1")
        row = delivery(db)
        with db.session_scope() as session:
            left = session.exec(select(EarlyReceipt)).all()
    assert (row.state, row.last_error) == ("failed", "30003 unreachable")
    assert left == []


def test_status_after_the_send_moves_the_delivery_and_interim_statuses_are_ignored(app_factory):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        record_sent(db, "SM2")
        with db.session_scope() as session:
            assert not receipts.apply_status(
                session, channel="platform", provider_id="SM2", status="sent", error=None
            )
            assert receipts.apply_status(
                session, channel="platform", provider_id="SM2", status="delivered", error=None
            )
        row = delivery(db)
    assert row.state == "delivered" and row.delivered_at is not None
