"""The timeline: corrections, retractions, resolving, scheduling, promises of a next update,
who receives what, and what counts as invalid input."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from broadcast import audit
from broadcast.questions import service as questions
from broadcast.timeline.models import Update, UpdateState
from tests.support import auth, new_incident, post_update, wait_for


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _incident(client, token: str, incident_id: int) -> dict:
    response = client.get(f"/api/v1/incidents/{incident_id}", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def _updates_by_id(client, token: str, incident_id: int) -> dict[int, dict]:
    return {u["id"]: u for u in _incident(client, token, incident_id)["updates"]}


# --- corrections and retractions -----------------------------------------------------------


def test_a_correction_is_a_new_update_and_the_original_stays_published(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"], body="Het water staat op 3 meter.")

    response = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "Het water staat op 2 meter."},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    correction = response.json()
    assert correction["id"] != original["id"]
    assert correction["kind"] == "correction"
    assert correction["state"] == "published"
    assert correction["supersedes"] == original["id"]
    assert correction["body"] == {"nl": "Het water staat op 2 meter."}
    updates = _updates_by_id(client, officer, incident["id"])
    assert set(updates) == {original["id"], correction["id"]}
    assert updates[original["id"]]["state"] == "published"
    assert updates[original["id"]]["superseded_by"] == correction["id"]
    assert updates[original["id"]]["body"] == {"nl": "Het water staat op 3 meter."}


def test_only_a_published_update_can_be_corrected_once(
    client, token_for, officer, scheduler_settled
):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"])
    first = client.post(
        f"/api/v1/updates/{original['id']}/correct", json={"body": "Eerste."}, headers=auth(officer)
    )
    assert first.status_code == 201, first.text
    retracted = post_update(client, officer, incident["id"])
    client.post(
        f"/api/v1/updates/{retracted['id']}/retract",
        json={"reason": "Fout."},
        headers=auth(officer),
    )
    rejected = post_update(client, volunteer, incident["id"])
    client.post(f"/api/v1/updates/{rejected['id']}/reject", headers=auth(officer))
    not_published = {
        "already corrected": original["id"],
        "pending_approval": post_update(client, volunteer, incident["id"])["id"],
        "draft": post_update(client, officer, incident["id"], draft=True)["id"],
        "scheduled": post_update(
            client, officer, incident["id"], publish_at=_iso(timedelta(hours=1))
        )["id"],
        "rejected": rejected["id"],
        "retracted": retracted["id"],
    }
    scheduler_settled(not_published["scheduled"])

    for label, update_id in not_published.items():
        response = client.post(
            f"/api/v1/updates/{update_id}/correct", json={"body": "Nieuw."}, headers=auth(officer)
        )
        assert response.status_code == 409, (label, response.text)
        assert response.json()["detail"], label
    updates = _updates_by_id(client, officer, incident["id"])
    assert [u for u in updates.values() if u["kind"] == "correction"] == [first.json()]


def test_a_correction_can_itself_be_corrected(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"])
    first = client.post(
        f"/api/v1/updates/{original['id']}/correct", json={"body": "Eerste."}, headers=auth(officer)
    ).json()

    second = client.post(
        f"/api/v1/updates/{first['id']}/correct", json={"body": "Tweede."}, headers=auth(officer)
    )

    assert second.status_code == 201, second.text
    assert second.json()["supersedes"] == first["id"]
    assert (
        _updates_by_id(client, officer, incident["id"])[first["id"]]["superseded_by"]
        == second.json()["id"]
    )


def test_a_retraction_keeps_the_original_with_its_reason_and_publishes_a_notice(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"], body="De Maasbrug is dicht.")

    response = client.post(
        f"/api/v1/updates/{original['id']}/retract",
        json={"reason": "De brug is open; bericht was onjuist."},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    notice = response.json()
    assert notice["kind"] == "retraction"
    assert notice["state"] == "published"
    assert notice["supersedes"] == original["id"]
    updates = _updates_by_id(client, officer, incident["id"])
    assert updates[original["id"]]["state"] == "retracted"
    assert updates[original["id"]]["reason"] == "De brug is open; bericht was onjuist."
    assert updates[original["id"]]["superseded_by"] == notice["id"]
    assert updates[original["id"]]["body"] == {"nl": "De Maasbrug is dicht."}
    assert notice["id"] in updates
    again = client.post(
        f"/api/v1/updates/{original['id']}/retract",
        json={"reason": "Nogmaals."},
        headers=auth(officer),
    )
    assert again.status_code == 409


def test_a_retraction_needs_a_reason(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"])

    for body in [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": None}]:
        response = client.post(
            f"/api/v1/updates/{original['id']}/retract", json=body, headers=auth(officer)
        )
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"], body

    updates = _updates_by_id(client, officer, incident["id"])
    assert list(updates) == [original["id"]]
    assert updates[original["id"]]["state"] == "published"


def test_corrections_and_retractions_reach_exactly_who_received_the_original(
    client, officer, subscribe, settle, arrivals
):
    plasmolen = subscribe("plasmolen", areas=["plasmolen"])
    subscribe("everywhere")
    subscribe("municipality", areas=["mook-en-middelaar"])
    subscribe("mook", areas=["mook"])
    subscribe("molenhoek-and-mook", areas=["molenhoek", "mook"])
    subscribe("plasmolen-emergencies-only", areas=["plasmolen"], min_severity="emergency")
    incident = new_incident(client, officer)
    original = post_update(
        client,
        officer,
        incident["id"],
        areas=["plasmolen"],
        severity="warning",
        body="Wateroverlast Plasmolen.",
    )
    settle(original["id"])
    expected = ["/s/everywhere", "/s/municipality", "/s/plasmolen"]
    assert arrivals(original["id"]) == expected

    # Who subscribes or changes later does not change who gets the correction.
    subscribe("late-plasmolen", areas=["plasmolen"])
    client.delete(f"/api/v1/subscribers/{plasmolen}", headers=auth(officer))
    subscribe("plasmolen", areas=["mook"])
    correction = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "Wateroverlast Plasmolen, niet in Mook."},
        headers=auth(officer),
    ).json()
    settle(correction["id"])
    notice = client.post(
        f"/api/v1/updates/{correction['id']}/retract",
        json={"reason": "Alles was in orde."},
        headers=auth(officer),
    ).json()
    settle(notice["id"])

    # The erased subscriber's row is kept (without the person) and fails; nobody new is added.
    erased = {"/s/everywhere", "/s/municipality"}
    assert arrivals(correction["id"]) == sorted(erased)
    assert arrivals(notice["id"]) == sorted(erased)
    counts = client.get(f"/api/v1/updates/{correction['id']}/deliveries", headers=auth(officer))
    assert counts.json()["webhook"] == {"delivered": 2, "failed": 1}


def test_a_correction_follows_the_original_to_the_same_subscribers(
    client, officer, subscribe, settle, arrivals, receiver
):
    subscribe("plasmolen", areas=["plasmolen"])
    subscribe("everywhere")
    subscribe("mook", areas=["mook"])
    incident = new_incident(client, officer)
    original = post_update(
        client, officer, incident["id"], areas=["plasmolen"], body="Wateroverlast Plasmolen."
    )
    settle(original["id"])
    subscribe("late", areas=["plasmolen"])

    correction = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "Wateroverlast Plasmolen en Middelaar."},
        headers=auth(officer),
    ).json()
    settle(correction["id"])

    assert arrivals(original["id"]) == ["/s/everywhere", "/s/plasmolen"]
    assert arrivals(correction["id"]) == ["/s/everywhere", "/s/plasmolen"]
    documents = [
        r.document for r in receiver.state.received if r.document["id"] == correction["id"]
    ]
    assert {d["supersedes"] for d in documents} == {original["id"]}
    assert all("Middelaar" in d["text"] for d in documents)


# --- resolving ------------------------------------------------------------------------------


def test_resolving_publishes_an_all_clear_and_closes_the_incident(client, officer, settle):
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"], next_update_due=_iso(timedelta(hours=1)))
    assert _incident(client, officer, incident["id"])["next_update_due"] is not None

    response = client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Het water is gezakt. Alles veilig."},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    all_clear = response.json()
    assert all_clear["kind"] == "all_clear"
    assert all_clear["state"] == "published"
    assert settle(all_clear["id"]) == {"platform": {"delivered": 1}}
    resolved = _incident(client, officer, incident["id"])
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] is not None
    assert resolved["next_update_due"] is None
    assert resolved["overdue"] is False
    assert resolved["updates"][0]["id"] == all_clear["id"]


def test_a_resolved_incident_takes_no_more_updates(client, officer):
    incident = new_incident(client, officer)
    client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Klaar."},
        headers=auth(officer),
    )

    late = client.post(
        f"/api/v1/incidents/{incident['id']}/updates",
        json={"body": "Nog iets."},
        headers=auth(officer),
    )
    again = client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Klaar."},
        headers=auth(officer),
    )

    assert late.status_code == 409, late.text
    assert late.json()["detail"]
    assert again.status_code == 409, again.text
    assert len(_incident(client, officer, incident["id"])["updates"]) == 1


def test_a_proposal_cannot_be_published_after_the_all_clear(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    proposal = post_update(client, volunteer, incident["id"], body="Water in de Zandstraat.")
    client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Alles veilig."},
        headers=auth(officer),
    )

    approve = client.post(f"/api/v1/updates/{proposal['id']}/approve", headers=auth(officer))

    assert approve.status_code == 409, approve.text
    assert _updates_by_id(client, officer, incident["id"])[proposal["id"]]["state"] != "published"


def test_a_scheduled_update_is_not_published_after_the_all_clear(
    client, officer, scheduler_settled
):
    from broadcast.timeline import service as timeline

    incident = new_incident(client, officer)
    scheduled = post_update(
        client,
        officer,
        incident["id"],
        body="Om 14:00 meer nieuws.",
        publish_at=_iso(timedelta(hours=1)),
    )
    scheduler_settled(scheduled["id"])
    client.post(
        f"/api/v1/incidents/{incident['id']}/resolve",
        json={"body": "Alles veilig."},
        headers=auth(officer),
    )

    with client.app.state.db.session_scope() as session:  # what the scheduler runs at 14:00
        timeline.publish_due(
            session, channels=client.app.state.channels, now=datetime.now(UTC) + timedelta(hours=2)
        )

    assert _updates_by_id(client, officer, incident["id"])[scheduled["id"]]["state"] != "published"


# --- scheduling ----------------------------------------------------------------------------


def test_a_scheduled_update_waits_and_is_not_sent(client, officer, settle, scheduler_settled):
    incident = new_incident(client, officer)

    scheduled = post_update(
        client, officer, incident["id"], body="Later.", publish_at=_iso(timedelta(hours=1))
    )

    assert scheduled["state"] == "scheduled"
    assert scheduled["published_at"] is None
    scheduler_settled(scheduled["id"])
    settle(post_update(client, officer, incident["id"], body="Nu.")["id"])
    deliveries = client.get(f"/api/v1/updates/{scheduled['id']}/deliveries", headers=auth(officer))
    assert deliveries.json() == {}
    assert "Later." not in client.get(f"/incidents/{incident['slug']}").text
    assert _updates_by_id(client, officer, incident["id"])[scheduled["id"]]["state"] == "scheduled"


def test_the_scheduler_publishes_an_update_when_its_time_comes(
    client, officer, settle, scheduler_settled
):
    incident = new_incident(client, officer)
    # A time that has passed by the time the request is handled means "now" (the rule), so on a
    # loaded machine a short lead can come too late: lengthen it until the update is scheduled.
    for lead in (1.5, 6, 30):
        publish_at = datetime.now(UTC) + timedelta(seconds=lead)
        scheduled = post_update(
            client,
            officer,
            incident["id"],
            body="Precies op tijd.",
            publish_at=publish_at.isoformat(),
        )
        if scheduled["state"] == "scheduled":
            break
        assert scheduled["state"] == "published"
    assert scheduled["state"] == "scheduled"
    scheduler_settled(scheduled["id"])

    # Watch the database itself: no request may hold the SQLite lock while the job fires.
    def published_at():
        with client.app.state.db.session_scope() as session:
            update = session.get(Update, scheduled["id"])
            return update.published_at if update.state == UpdateState.published else None

    when = wait_for(published_at)
    assert when >= publish_at - timedelta(seconds=1.5)  # never early; how late is the load's
    wait_for(
        lambda: (
            client.app.state.services.scheduler.scheduler.get_job(
                f"publish-update-{scheduled['id']}"
            )
            is None
        )
    )
    assert settle(scheduled["id"]) == {"platform": {"delivered": 1}}
    assert (
        client.get(f"/api/v1/updates/{scheduled['id']}", headers=auth(officer)).json()["state"]
        == "published"
    )
    with client.app.state.db.session_scope() as session:
        events = audit.recent(session, subject=f"update:{scheduled['id']}")
        assert ("update.publish", "scheduler") in {(e.action, e.actor) for e in events}


def test_the_server_keeps_answering_while_the_scheduler_waits_for_the_database(
    client, database_url, request
):
    scheduler = client.app.state.services.scheduler
    wait_for(lambda: scheduler.scheduler is not None and scheduler.scheduler.running)
    db = client.app.state.db
    held, release, freed = threading.Event(), threading.Event(), threading.Event()

    def hold_the_write_lock():  # e.g. a request, the dispatcher or a feed poll writing
        with db.session_scope() as session:
            session.execute(text("UPDATE incidents SET title = title"))
            held.set()
            release.wait(60)
        freed.set()

    # The lock is let go after the answer, or by this fallback long after it: an answer that
    # had to wait for the database comes after ``freed`` (order, not a stopwatch).
    fallback = threading.Timer(30, release.set)
    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert held.wait(30)
        scheduler.scheduler.wakeup()  # a job's time has come: it waits for the lock
        time.sleep(0.1)  # let it start waiting
        fallback.start()
        response = client.get("/openapi.json")  # needs no database at all
        answered_while_held = not freed.is_set()
    finally:
        release.set()
        holder.join()
        fallback.cancel()

    assert response.status_code == 200
    assert answered_while_held, "the server answered only once the database was free"


def test_a_publish_at_within_a_second_means_now(client, officer):
    incident = new_incident(client, officer)
    for publish_at in [_iso(timedelta(0)), _iso(timedelta(minutes=-5))]:
        update = post_update(client, officer, incident["id"], publish_at=publish_at)
        assert update["state"] == "published", publish_at


def test_a_publish_at_without_time_zone_is_invalid(client, officer):
    incident = new_incident(client, officer)
    response = client.post(
        f"/api/v1/incidents/{incident['id']}/updates",
        json={"body": "Later.", "publish_at": "2030-01-01T12:00:00"},
        headers=auth(officer),
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


# --- promises of a next update -------------------------------------------------------------


def test_an_incident_is_overdue_once_the_promised_update_is_late(client, officer):
    incident = new_incident(client, officer)
    assert _incident(client, officer, incident["id"])["overdue"] is False

    post_update(client, officer, incident["id"], next_update_due=_iso(timedelta(hours=1)))
    assert _incident(client, officer, incident["id"])["overdue"] is False

    late = post_update(client, officer, incident["id"], next_update_due=_iso(timedelta(seconds=-1)))
    assert late["state"] == "published"
    assert _incident(client, officer, incident["id"])["overdue"] is True
    listed = client.get("/api/v1/incidents", headers=auth(officer)).json()
    assert [i["overdue"] for i in listed if i["id"] == incident["id"]] == [True]

    post_update(client, officer, incident["id"], body="Nieuw bericht.")
    after = _incident(client, officer, incident["id"])
    assert after["overdue"] is False
    assert after["next_update_due"] is None


def test_approving_a_proposal_or_publishing_an_answer_keeps_the_promise(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    promised = post_update(
        client, officer, incident["id"], next_update_due=_iso(timedelta(hours=2))
    )
    due = _incident(client, officer, incident["id"])["next_update_due"]
    assert due is not None and due == promised["next_update_due"]

    proposal = post_update(client, volunteer, incident["id"], body="Foto van de dijk bij Mook.")
    approved = client.post(f"/api/v1/updates/{proposal['id']}/approve", headers=auth(officer))
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "published"
    assert _incident(client, officer, incident["id"])["next_update_due"] == due

    with client.app.state.db.session_scope() as session:
        question = questions.receive(
            session, channel="web", text="Is de dijk open?", incident_id=incident["id"]
        ).id
    answered = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "Nee.", "public": True},
        headers=auth(officer),
    )
    assert answered.status_code == 201, answered.text
    shown = _incident(client, officer, incident["id"])
    assert shown["next_update_due"] == due
    assert "Volgende update verwacht om" in client.get(f"/incidents/{incident['slug']}").text

    # The officer's next update keeps its own promise, or clears it by making none.
    later = _iso(timedelta(hours=4))
    post_update(client, officer, incident["id"], next_update_due=later)
    assert _incident(client, officer, incident["id"])["next_update_due"] != due
    post_update(client, officer, incident["id"], body="Geen nieuws.")
    assert _incident(client, officer, incident["id"])["next_update_due"] is None


# --- who receives what ---------------------------------------------------------------------


def test_an_exercise_reaches_the_test_audience_unless_an_officer_widened_it(
    client, officer, subscribe, settle, arrivals, receiver
):
    subscribe("resident")
    tester = client.post(
        "/api/v1/subscribers",
        headers=auth(officer),
        json={"channel": "webhook", "address": f"{receiver.url}/s/tester", "tester": True},
    )
    assert tester.status_code == 201, tester.text
    assert tester.json()["tester"] is True
    drill = new_incident(client, officer, exercise=True)
    assert drill["exercise_widened"] is False
    widened = new_incident(client, officer, exercise=True, exercise_widened=True)
    assert widened["exercise_widened"] is True

    for_testers = post_update(client, officer, drill["id"], body="Oefening: dijkbewaking.")
    for_everyone = post_update(client, officer, widened["id"], body="Oefening voor iedereen.")
    counts = settle(for_testers["id"])
    settle(for_everyone["id"])

    assert arrivals(for_testers["id"]) == ["/s/tester"]
    assert arrivals(for_everyone["id"]) == ["/s/resident", "/s/tester"]
    assert set(counts) == {"platform", "webhook"}  # the public page shows it, marked


def test_subscribers_get_only_updates_at_or_above_their_minimum_severity(
    client, officer, subscribe, settle, arrivals
):
    subscribe("all")
    subscribe("warnings", min_severity="warning")
    subscribe("emergencies", min_severity="emergency")
    incident = new_incident(client, officer, severity="info")

    sent = {
        severity: post_update(client, officer, incident["id"], severity=severity)["id"]
        for severity in ["info", "advisory", "warning", "emergency"]
    }
    for update_id in sent.values():
        settle(update_id)

    assert arrivals(sent["info"]) == ["/s/all"]
    assert arrivals(sent["advisory"]) == ["/s/all"]
    assert arrivals(sent["warning"]) == ["/s/all", "/s/warnings"]
    assert arrivals(sent["emergency"]) == ["/s/all", "/s/emergencies", "/s/warnings"]


def test_each_subscriber_gets_the_text_in_their_language(
    client, officer, subscribe, settle, receiver
):
    subscribe("dutch", language="nl")
    subscribe("english", language="en")
    incident = new_incident(client, officer)

    both = post_update(
        client,
        officer,
        incident["id"],
        body={"nl": "Dijk bij Mook versterkt.", "en": "Dike at Mook reinforced."},
    )
    dutch_only = post_update(client, officer, incident["id"], body="Alleen in het Nederlands.")
    settle(both["id"])
    settle(dutch_only["id"])

    documents = {(r.path, r.document["id"]): r.document for r in receiver.state.received}
    english = documents[("/s/english", both["id"])]
    dutch = documents[("/s/dutch", both["id"])]
    assert english["language"] == "en"
    assert "Dike at Mook reinforced." in english["text"]
    assert "Dijk bij Mook versterkt." not in english["text"]
    assert dutch["language"] == "nl"
    assert "Dijk bij Mook versterkt." in dutch["text"]
    assert "Dike at Mook reinforced." not in dutch["text"]
    assert "Alleen in het Nederlands." in documents[("/s/english", dutch_only["id"])]["text"]


# --- invalid input -------------------------------------------------------------------------

INVALID_UPDATES = {
    "unknown area": {"body": "x", "areas": ["atlantis"]},
    "one unknown area among known": {"body": "x", "areas": ["mook", "atlantis"]},
    "unknown channel": {"body": "x", "channels": ["pigeon"]},
    "unknown severity": {"body": "x", "severity": "apocalyptic"},
    "empty body object": {"body": {}},
    "empty Dutch text": {"body": {"nl": ""}},
    "blank texts": {"body": {"nl": "  ", "en": "\n"}},
    "unsupported language": {"body": {"fr": "Bonjour"}},
    "body over 10,000 characters": {"body": "x" * 10_001},
    "English over 10,000 characters": {"body": {"nl": "kort", "en": "y" * 10_001}},
    "no body": {"severity": "warning"},
    "body not text": {"body": 42},
    "publish_at not a time": {"body": "x", "publish_at": "morgen"},
    "next_update_due without time zone": {"body": "x", "next_update_due": "2030-01-01T12:00:00"},
}


def test_invalid_updates_are_rejected_with_422_and_nothing_is_stored(client, officer):
    incident = new_incident(client, officer)

    for label, body in INVALID_UPDATES.items():
        response = client.post(
            f"/api/v1/incidents/{incident['id']}/updates", json=body, headers=auth(officer)
        )
        assert response.status_code == 422, (label, response.text)
        assert response.json()["detail"], label

    assert _incident(client, officer, incident["id"])["updates"] == []


def test_a_body_of_exactly_10000_characters_is_accepted(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], body="x" * 10_000)
    assert len(update["body"]["nl"]) == 10_000


def test_an_empty_text_body_is_rejected(client, officer):
    incident = new_incident(client, officer)
    for body in ["", "   "]:
        for path in [
            f"/api/v1/incidents/{incident['id']}/updates",
            f"/api/v1/incidents/{incident['id']}/resolve",
        ]:
            response = client.post(path, json={"body": body}, headers=auth(officer))
            assert response.status_code == 422, (path, repr(body), response.text)
    assert _incident(client, officer, incident["id"])["updates"] == []


def test_an_empty_correction_is_rejected(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"])
    response = client.post(
        f"/api/v1/updates/{original['id']}/correct", json={"body": " "}, headers=auth(officer)
    )
    assert response.status_code == 422, response.text


def test_invalid_incidents_are_rejected_with_422(client, officer):
    cases = {
        "unknown area": {"title": "x", "severity": "info", "areas": ["atlantis"]},
        "unknown severity": {"title": "x", "severity": "mild", "areas": []},
        "empty title": {"title": "", "severity": "info", "areas": []},
        "blank title": {"title": "   ", "severity": "info", "areas": []},
        "no title": {"severity": "info"},
    }
    for label, body in cases.items():
        response = client.post("/api/v1/incidents", json=body, headers=auth(officer))
        assert response.status_code == 422, (label, response.text)
        assert response.json()["detail"], label
    assert client.get("/api/v1/incidents", headers=auth(officer)).json() == []


def test_malformed_json_is_a_422_with_detail(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"])
    targets = [
        "/api/v1/incidents",
        f"/api/v1/incidents/{incident['id']}/updates",
        f"/api/v1/updates/{original['id']}/correct",
        "/api/v1/subscribers",
    ]

    for path in targets:
        response = client.post(
            path,
            content=b'{"body": "Het water',
            headers=auth(officer) | {"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert detail and detail[0]["type"] == "json_invalid", path


def test_what_does_not_exist_is_a_404(client, officer):
    incident = new_incident(client, officer)
    missing = [
        ("GET", "/api/v1/incidents/999999", None),
        ("POST", "/api/v1/incidents/999999/updates", {"body": "x"}),
        ("POST", "/api/v1/incidents/999999/resolve", {"body": "x"}),
        ("GET", "/api/v1/updates/999999", None),
        ("POST", "/api/v1/updates/999999/approve", None),
        ("POST", "/api/v1/updates/999999/reject", None),
        ("POST", "/api/v1/updates/999999/correct", {"body": "x"}),
        ("POST", "/api/v1/updates/999999/retract", {"reason": "x"}),
        ("GET", "/api/v1/updates/999999/deliveries", None),
        ("POST", "/api/v1/updates/999999/resend-failed", None),
        ("GET", "/api/v1/subscribers/999999", None),
        ("DELETE", "/api/v1/subscribers/999999", None),
        ("POST", "/api/v1/questions/999999/answer", {"body": "x"}),
        ("GET", "/api/v1/no-such-endpoint", None),
    ]
    for method, path, body in missing:
        response = client.request(method, path, json=body, headers=auth(officer))
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["detail"], path
    assert _incident(client, officer, incident["id"])["updates"] == []
