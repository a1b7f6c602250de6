"""Who is on duty and the reminder before a promised update is late (issue #17 item 9): taking
over with a hand-over note, linking an officer's own Telegram chat with ``/koppel``, and the
scheduler's reminder job run with an injected clock (never by waiting for a deadline)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast import audit
from broadcast.auth.models import User
from broadcast.common import utcnow
from broadcast.duty.models import PromiseReminder
from tests.fakes.server import SlidingWindow
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    build_client,
    csrf_of,
    deliver,
    log_in,
    new_incident,
    payload,
    post_form,
    post_update,
    remind_at,
    said,
    token_for,
    wait_for,
)

TEXT = "update_message_text_private_teloxide.json"  # a private chat, language "en"
OFFICER_CHAT = 408258968  # the chat of that recorded message: here, the officer's own phone
NOTE = "Dijk bij Heumen: om 14:00 een nieuw bericht beloofd. Zandzakken op vrijdag."


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        server.state.chat_limit = SlidingWindow(100, 1.0)
        yield server


@pytest.fixture
def client(app_factory, fake):
    with build_client(app_factory, fake) as test_client:
        yield test_client


@pytest.fixture
def lotte(client) -> str:
    token = token_for(client.app, "officer", name="lotte", display_name="Lotte de Wit")
    assert log_in(client, "lotte").status_code == 303
    return token


def user_id(client, name: str) -> int:
    with client.app.state.db.session_scope() as session:
        found = session.exec(select(User).where(User.name == name)).one()
        assert found.id is not None
        return found.id


def actions(client, action: str) -> list[audit.AuditEvent]:
    with client.app.state.db.session_scope() as session:
        return [e for e in audit.recent(session) if e.action == action]


def link_chat(client, fake) -> None:
    """The signed-in officer asks the console for a code and sends it to the bot."""
    assert deliver(client, payload(TEXT, "/koppel")).status_code == 200  # without the code
    assert said(fake, OFFICER_CHAT, 1) == [
        "Send /koppel with the code from the console, for example: /koppel ABCD2345"
    ]
    page = post_form(client, "/console/duty/chat-code", {}, csrf=csrf_of(client, "/console/duty"))
    assert page.status_code == 200, page.text
    code = re.search(r"/koppel ([A-Z0-9]{8})", page.text)[1]
    assert deliver(client, payload(TEXT, f"/koppel {code.lower()}")).status_code == 200
    assert said(fake, OFFICER_CHAT, 2)[-1].startswith("Linked.")
    # The code is spent: sent again (or by anybody else) it links nothing.
    assert deliver(client, payload(TEXT, f"/koppel {code}")).status_code == 200
    assert said(fake, OFFICER_CHAT, 3)[-1].startswith("That code is unknown or has expired")


def promise(client, token: str, incident_id: int, hours: float = 3.0):
    due = (utcnow() + timedelta(hours=hours)).replace(microsecond=0)
    post_update(client, token, incident_id, next_update_due=due.isoformat())
    return due


def test_the_next_officer_sees_the_hand_over_note_and_the_history_is_audited(client, lotte):
    assert "Niemand heeft dienst" in client.get("/console").text
    assert post_form(client, "/console/duty", {}, csrf=csrf_of(client)).status_code == 303
    assert "Dienst: Lotte de Wit" in client.get("/console").text.replace("</strong>", "")
    saved = post_form(client, "/console/duty/note", {"note": NOTE}, csrf=csrf_of(client))
    assert saved.status_code == 303

    token_for(client.app, "officer", name="bram", display_name="Bram Peters")
    with TestClient(client.app) as bram:
        assert log_in(bram, "bram").status_code == 303
        before = bram.get("/console/duty").text
        assert "Overdracht van Lotte de Wit" in before and NOTE in before
        # Only the adviser on duty writes the note: Bram's is refused, and kept in the form.
        refused = post_form(bram, "/console/duty/note", {"note": "van Bram"}, csrf=csrf_of(bram))
        assert refused.status_code == 409 and "neem eerst de dienst over" in refused.text
        assert post_form(bram, "/console/duty", {}, csrf=csrf_of(bram)).status_code == 303
        after = bram.get("/console/duty").text
    assert "Overdracht van Lotte de Wit" in after and NOTE in after  # still there to read
    assert 'id="note" name="note" rows="4" maxlength="2000"></textarea>' in after  # his own
    assert after.count("<tr><td>") == 2  # the history keeps both shifts

    taken_over = actions(client, "duty.take_over")
    assert [(e.actor, e.detail["previous"]) for e in taken_over] == [
        ("bram", "lotte"),
        ("lotte", None),
    ]
    assert [e.actor for e in actions(client, "duty.note")] == ["lotte"]


def test_a_hand_over_note_that_is_too_long_is_refused_and_kept(client, lotte):
    post_form(client, "/console/duty", {}, csrf=csrf_of(client))
    note = "Zandzakken bij de brandweer. " + "x" * 2000
    refused = post_form(client, "/console/duty/note", {"note": note}, csrf=csrf_of(client))
    assert refused.status_code == 422
    assert "de overdrachtsnotitie is langer dan 2000 tekens" in refused.text
    assert note in refused.text  # what was typed is still in the form
    assert actions(client, "duty.note") == []


def test_volunteers_neither_see_nor_take_the_duty(client):
    token_for(client.app, "volunteer", name="vera")
    assert log_in(client, "vera").status_code == 303
    assert client.get("/console/duty").status_code == 403
    assert (
        post_form(client, "/console/duty", {"note": "ik"}, csrf=csrf_of(client)).status_code == 403
    )
    assert client.get("/console/events").status_code == 403
    assert actions(client, "duty.take_over") == []


def test_the_officer_on_duty_is_reminded_once_per_promise_and_in_their_own_chat(
    client, fake, lotte
):
    token_for(client.app, "officer", name="bram")  # not on duty: not reminded
    link_chat(client, fake)
    post_form(client, "/console/duty", {}, csrf=csrf_of(client))
    incident = new_incident(client, lotte, title="Hoogwater Maas")
    due = promise(client, lotte, incident["id"])

    assert remind_at(client.app, due - timedelta(minutes=11)) == []  # not yet
    assert remind_at(client.app, due - timedelta(minutes=9)) == [incident["id"]]
    message = said(fake, OFFICER_CHAT, 4)[-1]
    assert "Hoogwater Maas" in message and "beloofd om" in message
    assert f"/console/incidents/{incident['id']}" in message

    # Once per promise: later runs, and a fresh runtime as after a restart, send nothing.
    assert remind_at(client.app, due - timedelta(minutes=8)) == []
    assert remind_at(client.app, due - timedelta(minutes=1)) == []
    [reminded] = actions(client, "incident.reminder")
    assert reminded.subject == f"incident:{incident['id']}"
    assert reminded.detail == {"due": due.isoformat(), "officers": [user_id(client, "lotte")]}

    # A changed promise re-arms the reminder.
    later = promise(client, lotte, incident["id"], hours=4)
    assert remind_at(client.app, later - timedelta(minutes=5)) == [incident["id"]]
    assert len(said(fake, OFFICER_CHAT, 5)) == 5
    with client.app.state.db.session_scope() as session:
        assert len(session.exec(select(PromiseReminder)).all()) == 2


def test_with_nobody_on_duty_every_officer_is_reminded(client, lotte):
    token_for(client.app, "officer", name="bram")
    token_for(client.app, "volunteer", name="vera")  # volunteers make no promises
    incident = new_incident(client, lotte)
    due = promise(client, lotte, incident["id"])
    assert remind_at(client.app, due - timedelta(minutes=5)) == [incident["id"]]
    [reminded] = actions(client, "incident.reminder")
    assert reminded.detail["officers"] == [user_id(client, "lotte"), user_id(client, "bram")]


def test_late_resolved_far_and_switched_off_promises_are_not_reminded(client, lotte):
    late = new_incident(client, lotte, title="Al te laat")
    due = promise(client, lotte, late["id"], hours=1)
    resolved = new_incident(client, lotte, title="Opgelost")
    promise(client, lotte, resolved["id"], hours=1)
    answer = client.post(
        f"/api/v1/incidents/{resolved['id']}/resolve",
        json={"body": "Het water zakt."},
        headers={"Authorization": f"Bearer {lotte}"},
    )
    assert answer.status_code == 201, answer.text
    assert remind_at(client.app, due + timedelta(minutes=1)) == []  # late: the overdue banner
    assert remind_at(client.app, due - timedelta(minutes=30)) == []  # more than 10 minutes
    assert remind_at(client.app, due - timedelta(minutes=5), minutes=0) == []  # switched off
    assert actions(client, "incident.reminder") == []
    # In time, the open incident alone is reminded of.
    assert remind_at(client.app, due - timedelta(minutes=5)) == [late["id"]]


def test_the_schedulers_leader_runs_the_reminder_job(app_factory):
    """The wiring: the leader's interval job finds a promise due within the lead time (a check
    every second here; what is waited for is the recorded reminder, not a deadline)."""
    with TestClient(app_factory(overdue_check_seconds=1)) as client:
        officer = token_for(client.app, "officer", name="lotte")
        incident = new_incident(client, officer)
        promise(client, officer, incident["id"], hours=0.05)  # in 3 minutes
        [reminded] = wait_for(lambda: actions(client, "incident.reminder"))
        assert reminded.subject == f"incident:{incident['id']}"


def test_runs_at_the_same_moment_remind_once(client, lotte):
    """Two leaders for a moment (a lost lock), or a job that overlaps itself: one reminder."""
    incident = new_incident(client, lotte)
    due = promise(client, lotte, incident["id"])
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: remind_at(client.app, due - timedelta(minutes=5)), range(4)))
    assert sorted(runs) == [[], [], [], [incident["id"]]]
    assert len(actions(client, "incident.reminder")) == 1


def test_the_overview_shows_a_promise_nearly_due_to_whoever_opens_it(client, lotte):
    soon = new_incident(client, lotte, title="Hoogwater Maas")
    promise(client, lotte, soon["id"], hours=0.1)  # in 6 minutes: within the 10
    later = new_incident(client, lotte, title="Stormschade")
    promise(client, lotte, later["id"], hours=2)
    page = client.get("/console").text
    assert page.count("Volgend bericht beloofd om") == 1
    assert re.search(r"Volgend bericht beloofd om \d\d:\d\d: Hoogwater Maas", page)


def test_a_link_code_expires_after_15_minutes(client, lotte):
    from broadcast.duty import service as duty

    start = utcnow()
    with client.app.state.db.session_scope() as session:
        officer = session.get(User, user_id(client, "lotte"))
        late_code = duty.new_link_code(session, officer, now=start)
    with client.app.state.db.session_scope() as session:
        late = duty.link_chat(
            session,
            channel="telegram",
            address="7",
            code=late_code,
            now=start + timedelta(minutes=16),
        )
        assert late is None and duty.chat_of(session, officer.id).address is None
        code = duty.new_link_code(session, officer, now=start)
        linked = duty.link_chat(
            session, channel="telegram", address="7", code=code, now=start + timedelta(minutes=14)
        )
        assert linked is not None and duty.chat_of(session, officer.id).address == "7"
