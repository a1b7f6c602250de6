"""The core's side of inbound requests (``InboundHooks``): stored once per provider key, claimed
by one process at a time, a question made once per message, payloads emptied once processed,
keys forgotten after a week, and a person's stored messages dropped when they are erased."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select, update

from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.hooks import CoreHooks
from broadcast.inbound import service as inbound
from broadcast.inbound.models import InboundMessage
from broadcast.questions.models import Question
from broadcast.settings import Settings

PAYLOAD = {"From": "+31612345678", "Body": "Is de dijk veilig?"}


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def hooks_for(db: Database, lease_seconds: float = 60.0, secret_key: str | None = None):
    settings = Settings(lease_seconds=lease_seconds, secret_key=secret_key)
    return CoreHooks(db, settings)


def rows(db: Database) -> list[InboundMessage]:
    with db.session_scope() as session:
        return list(session.exec(select(InboundMessage).order_by(InboundMessage.id)))


def question_ids(db: Database) -> list[int]:
    with db.session_scope() as session:
        return list(session.exec(select(Question.id)))


def test_a_key_is_stored_once_and_emptied_when_done(db):
    hooks = hooks_for(db)

    async def scenario():
        first = await hooks.receive_inbound(channel="sms", key="SM1", payload=PAYLOAD)
        again = await hooks.receive_inbound(channel="sms", key="SM1", payload=PAYLOAD)
        other_channel = await hooks.receive_inbound(channel="whatsapp", key="SM1", payload={})
        await hooks.inbound_done(channel="sms", key="SM1")
        after_done = await hooks.receive_inbound(channel="sms", key="SM1", payload=PAYLOAD)
        return first, again, other_channel, after_done

    assert asyncio.run(scenario()) == (True, False, True, False)
    sms, whatsapp = rows(db)
    assert (sms.key, sms.payload, sms.sender, sms.handled_at is not None) == (
        "SM1",
        None,
        None,
        True,
    )
    assert whatsapp.handled_at is None and whatsapp.payload == {}


def test_a_message_makes_one_question_however_often_it_is_processed(db):
    """Processed twice at once (a lease ran out in a slow process): one question, and the
    stored message is done with it."""
    hooks = hooks_for(db)

    async def scenario():
        await hooks.receive_inbound(channel="sms", key="SM2", payload=PAYLOAD)
        ask = {"channel": "sms", "address": "+31612345678", "text": "Is de dijk veilig?"}
        together = await asyncio.gather(*(hooks.question(**ask, inbound_key="SM2") for _ in "ab"))
        later = await hooks.question(**ask, inbound_key="SM2")
        return {*together, later}

    assert len(asyncio.run(scenario())) == 1
    assert len(question_ids(db)) == 1
    [row] = rows(db)
    assert row.handled_at is not None and row.payload is None


def test_recovery_processes_what_a_dead_process_left_and_only_that(db):
    hooks = hooks_for(db, lease_seconds=0)  # every lease has run out by the next claim
    processed: list[tuple[str, dict]] = []

    async def process(key, payload):
        processed.append((key, payload))

    hooks.on_inbound("sms", process)

    async def scenario():
        await hooks.receive_inbound(channel="sms", key="SM-dead", payload=PAYLOAD)
        await hooks.receive_inbound(channel="sms", key="SM-done", payload=PAYLOAD)
        await hooks.inbound_done(channel="sms", key="SM-done")
        await hooks.receive_inbound(channel="telegram", key="7", payload={"update_id": 7})
        first = await hooks.recover_inbound()
        second = await hooks.recover_inbound()
        return first, second

    assert asyncio.run(scenario()) == (1, 0)
    assert processed == [("SM-dead", PAYLOAD)]  # telegram has no processor in this process
    assert {r.key: r.payload for r in rows(db)} == {
        "SM-dead": None,
        "SM-done": None,
        "7": {"update_id": 7},
    }


def test_a_live_claim_is_not_taken_over_before_its_lease_runs_out(db):
    hooks = hooks_for(db, lease_seconds=3600)
    processed = []

    async def process(key, payload):
        processed.append(key)

    hooks.on_inbound("sms", process)

    async def scenario():
        await hooks.receive_inbound(channel="sms", key="SM-live", payload=PAYLOAD)
        return await hooks.recover_inbound()

    assert asyncio.run(scenario()) == 0 and processed == []


def test_a_message_that_always_fails_is_dropped_after_its_attempts(db):
    hooks = hooks_for(db, lease_seconds=0)
    tried = []

    async def broken(key, payload):
        tried.append(key)
        raise RuntimeError("a bug")

    hooks.on_inbound("sms", broken)

    async def scenario():
        await hooks.receive_inbound(channel="sms", key="SM-poison", payload=PAYLOAD)
        for _ in range(inbound.MAX_ATTEMPTS + 2):
            await hooks.recover_inbound()

    asyncio.run(scenario())
    assert len(tried) == inbound.MAX_ATTEMPTS - 1  # the live attempt counted as the first
    [row] = rows(db)
    assert row.payload is None and row.handled_at is not None


def test_keys_are_forgotten_after_a_week(db):
    hooks = hooks_for(db)

    async def store(key):
        await hooks.receive_inbound(channel="sms", key=key, payload=PAYLOAD)
        await hooks.inbound_done(channel="sms", key=key)

    async def scenario():
        await store("SM-old")
        await store("SM-new")
        with db.session_scope() as session:
            session.exec(
                update(InboundMessage)
                .where(InboundMessage.key == "SM-old")
                .values(received_at=utcnow() - inbound.KEEP - timedelta(minutes=1))
            )
        await hooks.recover_inbound()

    asyncio.run(scenario())
    assert [r.key for r in rows(db)] == ["SM-new"]


@pytest.mark.parametrize("secret_key", [None, "configured-key"], ids=["stored key", "set key"])
def test_erasing_a_person_drops_their_stored_messages(db, secret_key):
    hooks = hooks_for(db, lease_seconds=0, secret_key=secret_key)
    settings = hooks.settings
    processed = []

    async def process(key, payload):
        processed.append(key)

    hooks.on_inbound("sms", process)

    async def scenario():
        await hooks.receive_inbound(
            channel="sms", key="SM-erased", payload=PAYLOAD, sender="+31612345678"
        )
        await hooks.receive_inbound(
            channel="sms", key="SM-other", payload=PAYLOAD, sender="+31612345679"
        )
        with db.session_scope() as session:
            inbound.forget_sender(session, "sms", "+31612345678", settings)
        await hooks.recover_inbound()

    asyncio.run(scenario())
    assert processed == ["SM-other"]
    assert all(r.payload is None and r.sender is None for r in rows(db))
