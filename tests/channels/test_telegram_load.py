"""10,000 private messages through the dispatcher against a Bot API that enforces 30 per second
(a true sliding window) and 1 per second per chat: none refused, each sent once. How close the
pace comes to Telegram's limit is a figure of ``bench/channels.py``, not an assertion here (a busy
machine would make it fail). About 345 seconds; marked slow, SQLite only (the subject is the
pace, not the store). The stand-in runs in a process of its own,
as Telegram does (see ``tests.fakes.process``)."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from broadcast.delivery.models import Delivery
from channels.telegram import TelegramChannel
from tests.fakes.process import StandInProcess
from tests.support import (
    add_residents,
    build_client,
    new_incident,
    post_update,
    token_for,
    wait_for,
)

RESIDENTS = 10_000


def delivered(client, update_id: int) -> int:
    query = select(func.count()).where(
        Delivery.update_id == update_id,
        Delivery.channel == "telegram",
        Delivery.state == "delivered",
    )
    with client.app.state.db.session_scope() as session:
        return session.exec(query).one()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the pace, not the store
def test_ten_thousand_residents_at_telegrams_pace_without_a_refusal(app_factory, database_url):
    with (
        StandInProcess("telegram") as fake,
        build_client(app_factory, fake, channel_id=None) as client,
    ):
        officer = token_for(client.app, "officer")
        add_residents(client, RESIDENTS)
        incident = new_incident(client, officer)
        expected_seconds = RESIDENTS / TelegramChannel.limits.per_second
        update = post_update(client, officer, incident["id"], body="Evacuatie om 14:00.")
        wait_for(
            lambda: delivered(client, update["id"]) == RESIDENTS,
            timeout=3 * expected_seconds,  # generous: it bounds the wait, it asserts no pace
            interval=0.5,
        )
        sends = [entry for entry in fake.log() if entry[1].endswith("/sendMessage")]

    accepted = sorted(at for at, _, status in sends if status == 200)
    refused = sum(1 for *_, status in sends if status == 429)
    assert len(accepted) == len(sends) - refused == RESIDENTS  # nobody twice, nothing else
    assert refused == 0
