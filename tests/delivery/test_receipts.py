"""Provider status callbacks, including one that beats the dispatcher's own write-back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.common import utcnow
from broadcast.delivery import queue, receipts
from broadcast.delivery.jobs import Outcome, OutcomeKind
from broadcast.delivery.models import Delivery, EarlyReceipt
from broadcast.fanout.views import UpdateRenderer
from broadcast.settings import Settings
from tests.support import new_incident, post_update, token_for, wait_for

RENDERER = UpdateRenderer(Settings(public_url="http://127.0.0.1:8000"))


def record_sent(db, provider_id: str) -> None:
    with db.session_scope() as session:
        (job,) = queue.claim(session, "platform", limit=10, lease_seconds=30, renderer=RENDERER)
    with db.session_scope() as session:
        queue.record(
            session,
            [Outcome(job, OutcomeKind.sent, provider_id=provider_id)],
            renderer=RENDERER,
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
                max_attempts=3,
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
                session,
                channel="platform",
                provider_id="SM2",
                status="sent",
                error=None,
                max_attempts=3,
            )
            assert receipts.apply_status(
                session,
                channel="platform",
                provider_id="SM2",
                status="delivered",
                error=None,
                max_attempts=3,
            )
        row = delivery(db)
    assert row.state == "delivered" and row.delivered_at is not None


def fail_for_a_while(db, provider_id: str, *, max_attempts: int = 3) -> None:
    """A callback: the message failed for a passing reason (Twilio's 14107), retry in 30 s."""
    with db.session_scope() as session:
        receipts.apply_status(
            session,
            channel="platform",
            provider_id=provider_id,
            status="failed",
            error="Twilio error 14107",
            retry_after=30.0,
            max_attempts=max_attempts,
        )


@pytest.mark.parametrize("early", [False, True], ids=["after the send", "before the send"])
def test_a_passing_failure_makes_the_delivery_due_again(app_factory, early):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        before = utcnow()
        if early:
            fail_for_a_while(db, "SM3")
            record_sent(db, "SM3")
        else:
            record_sent(db, "SM3")
            fail_for_a_while(db, "SM3")
        after = utcnow()
        row = delivery(db)
        with db.session_scope() as session:  # due in 30 s, not now
            due = queue.claim(session, "platform", limit=10, lease_seconds=30, renderer=RENDERER)
        assert due == []
    assert (row.state, row.attempts, row.provider_id) == ("pending", 1, None)
    assert row.last_error == "Twilio error 14107"
    # 30 s after the callback was handled, whenever that was between these two instants.
    wait = timedelta(seconds=30)
    assert before + wait <= row.next_attempt_at <= after + wait


def test_a_passing_failure_without_attempts_left_is_final(app_factory):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        record_sent(db, "SM4")  # the first attempt of at most one
        fail_for_a_while(db, "SM4", max_attempts=1)
        row = delivery(db)
    assert (row.state, row.last_error) == ("failed", "Twilio error 14107")


@pytest.mark.parametrize(
    ("first", "late", "final"),
    [
        ("delivered", "undelivered", "delivered"),
        ("delivered", "failed", "delivered"),
        ("undelivered", "delivered", "failed"),
        ("failed", "read", "failed"),
    ],
)
def test_a_final_state_stays_final_whatever_arrives_later(app_factory, first, late, final):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        record_sent(db, "SM5")
        for status, error in ((first, "first"), (late, "late"), (first, "replayed")):
            with db.session_scope() as session:
                receipts.apply_status(
                    session,
                    channel="platform",
                    provider_id="SM5",
                    status=status,
                    error=error,
                    max_attempts=3,
                )
        row = delivery(db)
    assert row.state == final
    assert row.last_error == "first"


def claim_one(db):
    with db.session_scope() as session:
        (job,) = queue.claim(session, "platform", limit=10, lease_seconds=30, renderer=RENDERER)
    return job


def waiting_for_receipt_lock(db) -> bool:
    """A transaction is queued behind a receipt lock (PostgreSQL's lock table says so)."""
    from sqlalchemy import text

    with db.session_scope() as session:
        return bool(
            session.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = :namespace AND NOT granted"
                ),
                {"namespace": receipts.RECEIPT_LOCKS},
            ).scalar()
        )


def test_a_callback_racing_the_write_back_is_applied_once(app_factory, settings):
    """The interleaving that stranded receipts under READ COMMITTED: the write-back has recorded
    the provider id and looked for early receipts but not committed, when the callback arrives
    and looks for the delivery. The callback must wait for the write-back and then apply."""
    import threading

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: this interleaving cannot happen there")
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        job = claim_one(db)
        recorded, answered = threading.Event(), []

        def callback() -> None:
            recorded.wait()
            with db.session_scope() as session:
                answered.append(
                    receipts.apply_status(
                        session,
                        channel="platform",
                        provider_id="SM9",
                        status="delivered",
                        error=None,
                        max_attempts=3,
                    )
                )

        other = threading.Thread(target=callback)
        other.start()
        with db.session_scope() as session:
            queue.record(
                session,
                [Outcome(job, OutcomeKind.sent, provider_id="SM9")],
                renderer=RENDERER,
                max_attempts=3,
                retry_base=1,
                retry_cap=1,
            )
            recorded.set()  # the callback runs now, while this transaction is still open
            wait_for(lambda: waiting_for_receipt_lock(db))
        other.join(60)
        row = delivery(db)
        with db.session_scope() as session:
            left = session.exec(select(EarlyReceipt)).all()
    assert answered == [True]
    assert row.state == "delivered"
    assert left == []


def test_the_sweeper_applies_a_receipt_left_behind_and_drops_stale_ones(app_factory):
    with TestClient(app_factory(dispatch=False)) as client:
        officer = token_for(client.app, "officer")
        post_update(client, officer, new_incident(client, officer)["id"])
        db = client.app.state.db
        record_sent(db, "SM10")
        long_ago = utcnow() - timedelta(days=receipts.EARLY_RECEIPT_DAYS + 1)
        with db.session_scope() as session:  # what the race used to leave behind
            session.add(EarlyReceipt(provider_id="SM10", channel="platform", status="delivered"))
            session.add(
                EarlyReceipt(
                    provider_id="SM-never-sent",
                    channel="platform",
                    status="delivered",
                    received_at=long_ago,
                )
            )
            session.add(EarlyReceipt(provider_id="SM-soon", channel="platform", status="failed"))
        with db.session_scope() as session:
            applied = receipts.sweep(session, max_attempts=3)
        with db.session_scope() as session:
            again = receipts.sweep(session, max_attempts=3)
        row = delivery(db)
        with db.session_scope() as session:
            left = [r.provider_id for r in session.exec(select(EarlyReceipt))]
    assert (applied, again) == (1, 0)
    assert row.state == "delivered"
    assert left == ["SM-soon"]  # its send may still be recorded
