"""What the core answers an inbound adapter (``broadcast.hooks.CoreHooks``): a resident's request
it refuses leaves as one of the typed refusals of ``channels.errors``, never as a domain error
the adapter would have to recognise by name."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from broadcast.subscribers.models import Subscriber
from channels.errors import InvalidInput, UnknownArea

RECEIVER = "http://127.0.0.1:9/hook"


def hooks_of(client):
    return client.app.state.channels["webhook"].context.hooks


def subscribers(client) -> list[Subscriber]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(Subscriber)))


@pytest.mark.parametrize(
    ("request_fields", "refusal"),
    [
        ({"address": RECEIVER, "postcode": "1234"}, UnknownArea),
        ({"address": RECEIVER, "areas": ["atlantis"]}, UnknownArea),
        ({"address": "not a url", "postcode": "6585"}, InvalidInput),
    ],
)
def test_a_refused_subscription_is_a_typed_refusal(client, request_fields, refusal):
    with pytest.raises(refusal):
        asyncio.run(hooks_of(client).subscribe(channel="webhook", **request_fields))
    assert subscribers(client) == []


def test_a_postcode_subscribes_to_its_area_again_and_again(client):
    hooks = hooks_of(client)
    first = asyncio.run(hooks.subscribe(channel="webhook", address=RECEIVER, postcode="6585"))
    again = asyncio.run(hooks.subscribe(channel="webhook", address=RECEIVER, postcode="6586"))
    assert first == again and [s.id for s in subscribers(client)] == [first]
