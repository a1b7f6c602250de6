"""A paced lane on PostgreSQL whose lock connection breaks in the middle of a fan-out (what a
database restart or a broken network does to it): it stops claiming, gives back what it had not
sent, lets the sends under way record, takes the lane again and finishes, each number once but
for what was in flight."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from broadcast import telemetry
from broadcast.delivery.dispatcher import LANE_LOCKS
from broadcast.delivery.models import Delivery
from tests.support import new_incident, post_update, subscribe_number, wait_for

NUMBERS = [f"+3162{n:07d}" for n in range(60)]
SMS_CONCURRENCY = 8  # channels/sms/channel.py


def terminate_lane_lock_holder(database_url: str, channel: str) -> None:
    """End the backend holding the channel's lane lock, as a restart would end every one."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND classid = :ns AND objid = hashtext(:name)::oid "
                "AND objsubid = 2"
            ),
            {"ns": LANE_LOCKS, "name": channel},
        ).all()
    engine.dispose()
    assert [row[0] for row in ended] == [True]


def sms_states(app, update_id: int) -> Counter:
    with app.app.state.db.session_scope() as session:
        rows = session.exec(
            select(Delivery.state).where(Delivery.update_id == update_id, Delivery.channel == "sms")
        ).all()
    return Counter(rows)


def done(app, update_id: int) -> bool:
    states = sms_states(app, update_id)
    return states["sent"] + states["delivered"] == len(NUMBERS)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lane_whose_lock_connection_broke_hands_back_and_takes_the_lane_again(
    live, twilio, database_url, monkeypatch
):
    transitions: list[tuple[str, bool]] = []
    recorded = telemetry.set_lane_owner
    monkeypatch.setattr(
        telemetry,
        "set_lane_owner",
        lambda channel, owner: (transitions.append((channel, owner)), recorded(channel, owner)),
    )
    app = live(lane_owner_retry_seconds=0.2)
    for number in NUMBERS:
        subscribe_number(app, number, [])
    lane = app.app.state.services.dispatcher.lanes["sms"]
    wait_for(lambda: lane.owner)
    # The paced channels it sends (SMS and WhatsApp declare Twilio's rate; the webhook and the
    # platform none, and run in every process).
    assert app.http.get("/healthz").json()["lanes_owned"] == ["sms", "whatsapp"]
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"], body="Dijk houdt stand.")
    wait_for(lambda: len(twilio.state.accepted) >= len(NUMBERS) // 4, timeout=120)

    terminate_lane_lock_holder(database_url, "sms")

    wait_for(lambda: [o for c, o in transitions if c == "sms"][:3] == [True, False, True], 120)
    wait_for(lambda: done(app, update["id"]), timeout=240)
    sent = Counter(to for to, _ in twilio.state.accepted)
    assert set(sent) == set(NUMBERS)
    assert sum(sent.values()) - len(NUMBERS) <= SMS_CONCURRENCY  # only sends under way twice
    assert set(sms_states(app, update["id"])) <= {"sent", "delivered"}  # none dead, none lost
