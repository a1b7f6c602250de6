"""Who receives an update: the expansion into delivery rows, straight on the store."""

from __future__ import annotations

from broadcast.delivery.models import DeliveryState
from broadcast.fanout import audience
from broadcast.questions.models import Question
from broadcast.subscribers.models import SubscriberState
from broadcast.timeline.models import UpdateKind
from tests.fanout.rows import deliveries, incident, published, subscriber


def targets(session, update) -> dict[str, set[str]]:
    by_channel: dict[str, set[str]] = {}
    for row in deliveries(session, update):
        by_channel.setdefault(row.channel, set()).add(row.target)
    return by_channel


def test_an_update_reaches_its_areas_their_ancestors_and_who_chose_no_area(store):
    with store.db.session_scope() as session:
        mook = subscriber(session, "https://a.example/mook", ("mook",))
        municipality = subscriber(session, "https://a.example/all", ("mook-en-middelaar",))
        anywhere = subscriber(session, "https://a.example/any")
        subscriber(session, "https://a.example/molenhoek", ("molenhoek",))
        update = published(session, incident(session), areas=["mook"])

        added = audience.expand(session, update, store.channels)

        reached = {f"s{s.id}" for s in (mook, municipality, anywhere)}
        assert targets(session, update) == {"platform": {"public"}, "webhook": reached}
        assert added == 4


def test_severity_minimums_and_inactive_subscribers_are_respected(store):
    with store.db.session_scope() as session:
        wants_all = subscriber(session, "https://a.example/info", language="en")
        subscriber(session, "https://a.example/emergency", min_severity="emergency")
        subscriber(session, "https://a.example/gone", state=SubscriberState.gone)
        subscriber(session, "https://a.example/left", state=SubscriberState.unsubscribed)
        update = published(session, incident(session), severity="warning", channels=["webhook"])

        audience.expand(session, update, store.channels)

        (row,) = deliveries(session, update)
        assert (row.target, row.subscriber_id, row.language) == (
            f"s{wants_all.id}",
            wants_all.id,
            "en",
        )


def test_a_private_update_reaches_no_subscriber(store):
    with store.db.session_scope() as session:
        subscriber(session, "https://a.example/one")
        update = published(session, incident(session), public=False)

        audience.expand(session, update, store.channels)

        assert targets(session, update) == {"platform": {"public"}}


def test_expanding_twice_adds_nothing_the_second_time(store):
    with store.db.session_scope() as session:
        subscriber(session, "https://a.example/one")
        update = published(session, incident(session))

        assert audience.expand(session, update, store.channels) == 2
        assert audience.expand(session, update, store.channels) == 0
        assert len(deliveries(session, update)) == 2


def test_a_correction_follows_the_original_and_cancels_what_had_not_gone_out(store):
    with store.db.session_scope() as session:
        first, second = (subscriber(session, f"https://a.example/{n}") for n in (1, 2))
        flood = incident(session)
        original = published(session, flood, channels=["webhook"])
        audience.expand(session, original, store.channels)
        sent, waiting = deliveries(session, original)
        sent.state = DeliveryState.sent
        session.add(sent)
        session.flush()
        subscriber(session, "https://a.example/late")  # joined after the original went out
        correction = published(
            session, flood, kind=UpdateKind.correction, supersedes_id=original.id
        )

        audience.expand(session, correction, store.channels)

        session.refresh(waiting)
        assert waiting.state == DeliveryState.cancelled
        assert targets(session, correction) == {"webhook": {f"s{first.id}", f"s{second.id}"}}


def test_a_correction_never_reaches_who_opted_out_after_the_original(store):
    with store.db.session_scope() as session:
        stays, stopped, left = (subscriber(session, f"https://a.example/{n}") for n in (1, 2, 3))
        flood = incident(session)
        original = published(session, flood, channels=["webhook"])
        audience.expand(session, original, store.channels)
        for row in deliveries(session, original):
            row.state = DeliveryState.sent
            session.add(row)
        stopped.state, left.state = SubscriberState.gone, SubscriberState.unsubscribed  # STOP
        session.add_all([stopped, left])
        session.flush()
        for kind in (UpdateKind.correction, UpdateKind.retraction):
            follow_up = published(session, flood, kind=kind, supersedes_id=original.id)

            audience.expand(session, follow_up, store.channels)

            assert targets(session, follow_up) == {"webhook": {f"s{stays.id}"}}


def test_queue_one_addresses_the_question_in_its_language(store):
    with store.db.session_scope() as session:
        question = Question(channel="webhook", address="https://a.example/q", text="Dijk?")
        session.add(question)
        session.flush()
        answer = published(session, incident(session), kind=UpdateKind.answer, public=False)

        assert audience.queue_one(
            session, answer, "webhook", question_id=question.id, language="en"
        )

        (row,) = deliveries(session, answer)
        assert (row.target, row.question_id, row.language) == (f"q{question.id}", question.id, "en")
