"""Residents talking to the bot: real Bot API update payloads posted to ``/webhooks/telegram``,
answers sent through python-telegram-bot to the stand-in."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import select

from broadcast.db import Database
from broadcast.delivery.models import DirectMessage
from broadcast.inbound import service as inbound
from broadcast.inbound.models import InboundMessage
from broadcast.questions.models import Question
from broadcast.subscribers.models import Subscriber, SubscriberArea
from tests.fakes.server import HeldFromFirstLook, SlidingWindow
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    TELEGRAM_START,
    auth,
    build_client,
    deliver,
    new_incident,
    payload,
    post_update,
    said,
    subscribe_chat,
    token_for,
    wait_for,
)

TEXT = "update_message_text_private_teloxide.json"  # "4" from chat 408258968, language "en"
KICKED = "update_my_chat_member_kicked_teloxide.json"  # chat 0 blocked the bot
BUTTON = "update_callback_query_tgdocs.json"  # a button tap by user 1111111
RESIDENT = 408258968
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")


def stored(client) -> list[InboundMessage]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(InboundMessage)))


def replies_queued(client) -> list[DirectMessage]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(DirectMessage)))


def subscriber(client, chat_id: int) -> tuple[Subscriber | None, list[str]]:
    with client.app.state.db.session_scope() as session:
        found = session.exec(select(Subscriber).where(Subscriber.address == str(chat_id))).first()
        if found is None:
            return None, []
        query = select(SubscriberArea.area_code).where(SubscriberArea.subscriber_id == found.id)
        return found, sorted(session.exec(query))


def questions(client) -> list[dict]:
    response = client.get("/api/v1/questions", headers=auth(officer_of(client)))
    assert response.status_code == 200, response.text
    return response.json()


def officer_of(client) -> str:
    """One officer per app, made on first use."""
    if not hasattr(client.app.state, "test_officer"):
        client.app.state.test_officer = token_for(client.app, "officer")
    return client.app.state.test_officer


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        # Test residents type faster than people: 1 message per second per chat is not the
        # subject here (see test_a_flood_controlled_reply_is_dropped_not_fatal).
        server.state.chat_limit = SlidingWindow(100, 1.0)
        yield server


@pytest.fixture
def client(app_factory, fake):
    with build_client(app_factory, fake) as test_client:
        yield test_client


@pytest.mark.parametrize("secret", [None, "", "s3cret-not", "S3CRET"])
def test_a_forged_request_is_refused_and_changes_nothing(client, fake, secret):
    for data in (payload(TEXT, "6586"), payload(TEXT, "Is de dijk veilig?"), payload(KICKED)):
        assert deliver(client, data, secret).status_code == 403
    assert subscriber(client, RESIDENT) == (None, [])
    assert questions(client) == [] and fake.state.sent == []


def test_without_a_configured_secret_every_request_is_refused(app_factory, fake):
    with build_client(app_factory, fake, webhook_secret=None) as client:
        assert deliver(client, payload(TELEGRAM_START), secret="").status_code == 403
        assert deliver(client, payload(TELEGRAM_START), secret="anything").status_code == 403
    assert fake.state.sent == []


def test_start_welcomes_with_area_and_language_buttons(client, fake):
    assert deliver(client, payload(TELEGRAM_START)).status_code == 200
    said(fake, 1111111, 1)
    [welcome] = fake.state.sent
    assert welcome.chat_id == 1111111 and "Welkom" in welcome.text and "English" in welcome.text
    buttons = json.loads(welcome.params["reply_markup"])["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == ["all:nl", "lang:en"]


def test_a_postcode_subscribes_to_its_village(client, fake):
    assert deliver(client, payload(TEXT, "6586")).status_code == 200
    found, areas = subscriber(client, RESIDENT)
    assert (found.channel, found.state, found.language, areas) == (
        "telegram",
        "active",
        "en",
        ["plasmolen"],
    )
    assert said(fake, RESIDENT, 1) == [
        "You will receive updates for postcode 6586. To stop, send /stop."
    ]


def test_the_area_command_and_a_deep_link_take_a_postcode_too(client, fake):
    deliver(client, payload(TEXT, "/gebied 6584 AB"))
    assert subscriber(client, RESIDENT)[1] == ["molenhoek"]
    deliver(client, payload(TELEGRAM_START, "/start 6587"))
    assert subscriber(client, 1111111)[1] == ["middelaar"]
    assert "postcode 6587" in said(fake, 1111111, 1)[-1]


def test_an_unknown_postcode_is_answered_politely(client, fake):
    assert deliver(client, payload(TEXT, "1234")).status_code == 200
    assert subscriber(client, RESIDENT) == (None, [])
    assert said(fake, RESIDENT, 1) == [
        "Postcode 1234 is not in the municipality. Send a postcode from the municipality, or "
        "choose Whole municipality."
    ]


def test_a_second_postcode_moves_the_subscription(client, fake):
    deliver(client, payload(TEXT, "6586"))
    deliver(client, payload(TEXT, "6585"))
    assert subscriber(client, RESIDENT)[1] == ["mook"]
    assert "postcode 6585" in said(fake, RESIDENT, 2)[-1]


def test_stop_unsubscribes(client, fake):
    deliver(client, payload(TEXT, "6586"))
    assert deliver(client, payload(TEXT, "/stop")).status_code == 200
    assert subscriber(client, RESIDENT)[0].state == "unsubscribed"
    assert said(fake, RESIDENT, 2)[-1].startswith("You are unsubscribed")
    deliver(client, payload(TELEGRAM_START, "/stop"))  # a chat that never subscribed
    assert said(fake, 1111111, 1) == ["U was niet aangemeld. Aanmelden: stuur /start."]


def test_free_text_becomes_a_question_and_is_acknowledged(client, fake):
    replied = {
        "message_id": 77,
        "date": 1581448800,
        "chat": {"id": RESIDENT, "type": "private"},
        "text": "Waarschuwing – Hoogwater Maas",
    }
    data = payload(TEXT, "Is de dijk bij Plasmolen nog veilig?", reply_to_message=replied)
    assert deliver(client, data).status_code == 200

    [question] = questions(client)
    assert (question["channel"], question["text"], question["language"]) == (
        "telegram",
        "Is de dijk bij Plasmolen nog veilig?",
        "en",
    )
    with client.app.state.db.session_scope() as session:
        stored = session.get(Question, question["id"])
        assert (stored.address, stored.reply_to) == (str(RESIDENT), f"{RESIDENT}:77")
    assert said(fake, RESIDENT, 1)[-1].startswith("Thank you, we have received your question")
    assert subscriber(client, RESIDENT) == (None, [])


def test_a_repeated_update_is_handled_once(client, fake):
    """The test client returns once the background work is done: nothing is still to come."""
    data = payload(TEXT, "Waar kan ik zandzakken halen?")
    assert [deliver(client, data).status_code for _ in range(3)] == [200, 200, 200]
    assert len(questions(client)) == 1 and len(replies_queued(client)) == 1
    said(fake, RESIDENT, 1)


def test_an_update_is_stored_before_the_answer_and_emptied_once_handled(client, fake):
    data = payload(TEXT, "Waar kan ik zandzakken halen?")
    assert deliver(client, data).status_code == 200
    [row] = stored(client)
    assert (row.channel, row.key) == ("telegram", str(data["update_id"]))
    assert row.payload is None and row.sender is None and row.handled_at is not None
    assert [q["text"] for q in questions(client)] == ["Waar kan ik zandzakken halen?"]


def test_a_repeated_update_makes_nothing_after_a_restart(app_factory, fake):
    """The replay guard is in the database, not in one process's memory."""
    question, stop = payload(TEXT, "Is de pont nog in de vaart?"), payload(TEXT, "/stop")
    with build_client(app_factory, fake) as before:
        deliver(before, payload(TEXT, "6586"))
        deliver(before, question)
        deliver(before, stop)
        deliver(before, payload(TEXT, "6585"))  # subscribes again
    with build_client(app_factory, fake) as after:
        assert deliver(after, question).status_code == deliver(after, stop).status_code == 200
        assert len(questions(after)) == 1
        found, areas = subscriber(after, RESIDENT)
        assert (found.state, areas) == ("active", ["mook"])  # the replayed /stop did nothing


def test_processes_sharing_the_database_handle_an_update_once(app_factory, fake):
    """Several ``broadcast serve`` behind one load balancer, Telegram resending meanwhile."""
    data = payload(TEXT, "Waar is de noodopvang?")
    with build_client(app_factory, fake) as one, build_client(app_factory, fake) as two:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda c: deliver(c, data).status_code, [one, two] * 4))
        assert answers == [200] * 8
        assert len(questions(one)) == 1 and len(replies_queued(one)) == 1


def test_an_update_a_crash_left_unhandled_is_handled_after_the_restart(app_factory, fake, settings):
    """Stored and acknowledged, then ``kill -9`` before it was handled: the next start-up
    handles it, and Telegram's resend of it changes nothing."""
    data = payload(TEXT, "Is het water drinkbaar?")
    db = Database(settings.database_url)
    with db.session_scope() as session:
        inbound.store(
            session,
            channel="telegram",
            key=str(data["update_id"]),
            payload=data,
            sender=str(RESIDENT),
            lease=timedelta(0),  # the dead process's claim has run out
        )
    db.dispose()
    with build_client(app_factory, fake) as client:
        wait_for(lambda: questions(client))
        assert said(fake, RESIDENT, 1)[0].startswith("Thank you")
        assert deliver(client, data).status_code == 200
        assert len(questions(client)) == 1 and len(replies_queued(client)) == 1
        assert stored(client)[0].payload is None


def test_an_update_that_cannot_be_read_is_refused(client, fake):
    for body in ({"message": {"text": "hoi"}}, {"update_id": "12"}, {"update_id": True}, [1]):
        answer = deliver(client, body)
        assert answer.status_code == 400 and "detail" in answer.json()
    assert stored(client) == [] and questions(client) == []


def test_a_question_the_core_could_not_take_is_tried_again(client, fake, question_fails_once):
    """The database failed while the question was stored: the update stays stored (not
    answered "sorry" and forgotten), and the core's next pass makes the question."""
    hooks = client.app.state.channels["telegram"].context.hooks
    failures = question_fails_once(hooks)
    data = payload(TEXT, "Moet ik mijn kelder leeghalen?")
    assert deliver(client, data).status_code == 200
    assert failures == [str(data["update_id"])] and questions(client) == []
    assert client.portal.call(hooks.recover_inbound) == 1
    assert [q["text"] for q in questions(client)] == ["Moet ik mijn kelder leeghalen?"]
    assert said(fake, RESIDENT, 1)[0].startswith("Thank you")


def test_blocking_the_bot_unsubscribes(client, fake):
    officer = officer_of(client)
    subscribe_chat(client, officer, 0, ["mook"])
    assert deliver(client, payload(KICKED)).status_code == 200
    assert subscriber(client, 0)[0].state == "unsubscribed"
    assert fake.state.sent == []  # a blocked bot cannot answer


def test_buttons_choose_a_language_and_the_whole_municipality(client, fake):
    tap = payload(BUTTON)
    tap["callback_query"]["data"] = "lang:en"
    deliver(client, tap)
    assert fake.state.callback_answers[-1]["text"] == "English selected"
    assert "Welcome" in said(fake, 1111111, 1)[-1]

    tap = payload(BUTTON)
    tap["callback_query"]["data"] = "all:en"
    deliver(client, tap)
    found, areas = subscriber(client, 1111111)
    assert (found.state, found.language, areas) == ("active", "en", [])
    assert "whole municipality" in said(fake, 1111111, 2)[-1]


def test_an_old_button_is_answered_without_changes(client, fake):
    assert deliver(client, payload(BUTTON)).status_code == 200  # data "Data from button callback"
    assert fake.state.callback_answers[-1]["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert subscriber(client, 1111111) == (None, []) and fake.state.sent == []


def test_status_lists_the_latest_updates(client, fake):
    officer = officer_of(client)
    incident = new_incident(client, officer, title="Hoogwater Maas & Niers")
    post_update(client, officer, incident["id"], body="Piek vrijdag.\nZandzakken bij de brandweer.")
    deliver(client, payload(TELEGRAM_START, "/status"))
    said(fake, 1111111, 1)
    status = fake.state.messages[(1111111, max(m for c, m in fake.state.messages if c == 1111111))]
    assert status["text"].startswith("Laatste berichten\n\nHoogwater Maas & Niers\nPiek vrijdag.\n")
    assert "Zandzakken" not in status["text"]


def test_status_answers_the_pinned_instruction_first(client, fake):
    officer = officer_of(client)
    incident = new_incident(client, officer, title="Hoogwater")
    post_update(client, officer, incident["id"], body="Piek vrijdag.")
    pinned = client.put(
        f"/api/v1/incidents/{incident['id']}/instruction",
        headers=auth(officer),
        json={"body": {"nl": "Blijf binnen & sluit ramen.", "en": "Stay indoors."}},
    )
    assert pinned.status_code == 200, pinned.text
    deliver(client, payload(TELEGRAM_START, "/status"))
    said(fake, 1111111, 1)
    status = fake.state.messages[(1111111, max(m for c, m in fake.state.messages if c == 1111111))]
    assert status["text"].startswith(
        "Laatste berichten\n\nHoogwater\n📌 Wat moet u nu doen: Blijf binnen & sluit ramen.\n"
        "Piek vrijdag.\n"
    )
    assert "bold" in {entity["type"] for entity in status["entities"]}


def test_help_lists_the_commands(client, fake):
    deliver(client, payload(TELEGRAM_START, "/help"))
    assert "/gebied 6585" in said(fake, 1111111, 1)[-1]


def test_a_flood_controlled_reply_is_sent_once_the_chat_may_be_written_to(client, fake):
    """Replies go through the outbox: the core waits out the 429 and sends it then."""
    # Something else wrote to the chat just before the reply, however late the reply comes.
    fake.state.chat_limit = HeldFromFirstLook(1, 5.0, key=RESIDENT)
    assert (
        deliver(client, payload(TEXT, "Mag ik de auto bij de dijk laten staan?")).status_code == 200
    )
    assert len(questions(client)) == 1
    assert said(fake, RESIDENT, 1)[0].startswith("Thank you")
    [refused] = fake.state.rate_limited
    assert refused["chat_id"] == RESIDENT
    waited = fake.state.sent[0].at - refused["at"]
    assert waited >= refused["retry_after"] - 0.05  # waited as Telegram asked


def test_a_private_answer_reaches_the_resident_in_the_same_chat(client, fake):
    deliver(client, payload(TEXT, "Is het water drinkbaar?"))
    [question] = questions(client)
    officer = officer_of(client)
    response = client.post(
        f"/api/v1/questions/{question['id']}/answer",
        json={"body": "Ja, het kraanwater is veilig.", "public": False},
        headers=auth(officer),
    )
    assert response.status_code == 201, response.text
    said(fake, RESIDENT, 2)
    assert "Ja, het kraanwater is veilig." in said(fake, RESIDENT)[-1]


def test_the_sign_up_page_links_the_bot_for_every_village(app_factory, fake):
    """The subscribe link the adapter declares, a deep link that the /start above reads."""
    with build_client(app_factory, fake, bot_username="@GemeenteMookBot") as client:
        page = client.get("/subscribe").text
    assert "Telegram</h2>" in page
    assert 'href="https://t.me/GemeenteMookBot?start=6584"' in page  # a village's postcode
    assert 'href="https://t.me/GemeenteMookBot"' in page  # the whole municipality
