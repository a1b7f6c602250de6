"""What a claimed delivery sends, as the domain sees it: update views, addresses, the message a
correction replaces, direct messages; and what becomes of recipients who left or moved."""

from __future__ import annotations

from sqlmodel import select

from broadcast.delivery import direct
from broadcast.delivery.jobs import ClaimedRow
from broadcast.delivery.models import Delivery
from broadcast.fanout.views import UpdateRenderer, view_of
from broadcast.incidents.models import Incident
from broadcast.questions.models import Question
from broadcast.subscribers.models import Subscriber, SubscriberState
from broadcast.timeline.models import Update, UpdateKind
from tests.fanout.rows import incident, published, subscriber


def renderer(store) -> UpdateRenderer:
    return UpdateRenderer(store.settings)


def queued(session, update: Update | None, target: str, **fields) -> Delivery:
    row = Delivery(update_id=update.id if update else None, channel="webhook", target=target)
    for name, value in fields.items():
        setattr(row, name, value)
    session.add(row)
    session.flush()
    return row


def claimed(row: Delivery) -> ClaimedRow:
    return ClaimedRow(
        row.id,
        row.update_id,
        row.target,
        row.subscriber_id,
        row.question_id,
        row.direct_message_id,
        row.language,
        row.attempts,
    )


def test_adapters_never_see_what_xml_cannot_carry_in_rows_written_before_the_check():
    row = Update(id=7, incident_id=1, body={"nl": "Hoog\u0007water\ufffe", "en": "High\x00 water"})
    incident = Incident(id=1, title="Hoog\u001bwater", slug="hoogwater", areas=[])
    view = view_of(row, incident, "http://127.0.0.1:8000")
    assert view.body == {"nl": "Hoogwater", "en": "High water"}
    assert view.incident_title == "Hoogwater"


def test_each_kind_of_target_gets_its_address(store):
    with store.db.session_scope() as session:
        update = published(session, incident(session, exercise=True))
        resident = subscriber(session, "https://a.example/resident", language="en")
        left = subscriber(session, "https://a.example/left", state=SubscriberState.gone)
        question = Question(channel="webhook", address="https://a.example/asked", text="Dijk?")
        session.add(question)
        session.flush()
        rows = [
            queued(session, update, f"s{resident.id}", subscriber_id=resident.id, language="en"),
            queued(session, update, "s999"),  # the subscriber was erased meanwhile
            queued(session, update, f"s{left.id}", subscriber_id=left.id),  # replied STOP
            queued(session, update, f"q{question.id}", question_id=question.id),
            queued(session, update, "https://partner.example/hook"),
        ]

        contents = renderer(store).contents(session, "webhook", [claimed(r) for r in rows])

        assert [contents[r.id].address for r in rows] == [
            "https://a.example/resident",
            None,
            None,
            "https://a.example/asked",
            "https://partner.example/hook",
        ]
        view = contents[rows[0].id].update
        assert view.url == f"https://crisis.example.nl/u/{update.id}"
        assert (view.incident_title, view.exercise, view.body["en"]) == (
            "Hoogwater Maas",
            True,
            "Dike watch at Mook.",
        )
        assert all(c.message is None and c.original_message_id is None for c in contents.values())


def test_a_direct_message_is_final_text_with_its_own_address(store):
    with store.db.session_scope() as session:
        message = direct.queue(
            session,
            channel="webhook",
            address="https://a.example/dm",
            text="Uw code: 1234",
            data={"code": "1234"},
            ttl_seconds=600,
        )
        row = session.get(Delivery, queued_id(session, message.id))

        (content,) = renderer(store).contents(session, "webhook", [claimed(row)]).values()

        assert (content.address, content.update) == ("https://a.example/dm", None)
        assert (content.message.text, content.message.data) == ("Uw code: 1234", {"code": "1234"})
        assert content.expires_at == message.expires_at


def queued_id(session, direct_message_id: int) -> int:
    query = select(Delivery.id).where(Delivery.direct_message_id == direct_message_id)
    return session.exec(query).one()


def test_a_correction_names_the_message_it_replaces_at_the_same_target(store):
    with store.db.session_scope() as session:
        flood = incident(session)
        original = published(session, flood)
        queued(session, original, "s1", provider_id="P-1")
        queued(session, original, "s2")  # never went out: nothing to replace
        correction = published(
            session, flood, kind=UpdateKind.correction, supersedes_id=original.id
        )
        rows = [queued(session, correction, "s1"), queued(session, correction, "s2")]

        contents = renderer(store).contents(session, "webhook", [claimed(r) for r in rows])

        assert [contents[r.id].original_message_id for r in rows] == ["P-1", None]
        assert contents[rows[0].id].update.supersedes == original.id


def test_a_recipient_gone_stops_being_active(store):
    with store.db.session_scope() as session:
        resident = subscriber(session, "https://a.example/blocked")

        renderer(store).recipient_gone(session, resident.id)

        assert session.get(Subscriber, resident.id).state == SubscriberState.gone


def test_a_recipient_who_moved_is_followed_unless_the_address_is_taken(store):
    with store.db.session_scope() as session:
        moving = subscriber(session, "https://a.example/old")
        stays = subscriber(session, "https://a.example/taken")
        doubled = subscriber(session, "https://a.example/double")

        assert renderer(store).recipient_moved(session, moving.id, "https://a.example/new")
        assert not renderer(store).recipient_moved(session, doubled.id, "https://a.example/taken")

        assert session.get(Subscriber, moving.id).address == "https://a.example/new"
        assert session.get(Subscriber, doubled.id).state == SubscriberState.gone
        assert session.get(Subscriber, stays.id).state == SubscriberState.active
