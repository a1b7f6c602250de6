"""Residents ask on the incident's public page: the question reaches the officers' inbox and is
answered on the timeline (it has no reply address). Robots, other sites, floods and questions
about a finished incident are refused without losing what the resident typed."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.questions.models import Question
from tests.support import auth, new_incident

SITE = {"Origin": "http://testserver"}
QUESTION = "Kan ik mijn auto nog parkeren aan de Maasweg?"


def ask(client, incident: dict, text: str = QUESTION, *, lang: str = "nl", **fields):
    return client.post(
        f"/incidents/{incident['slug']}/questions?lang={lang}",
        data={"question": text} | fields,
        headers=SITE,
        follow_redirects=False,
    )


def stored(client) -> list[Question]:
    with client.app.state.db.session_scope() as session:
        return list(session.exec(select(Question)))


def test_a_question_from_the_page_reaches_the_inbox_and_is_thanked(client, officer):
    incident = new_incident(client, officer)
    page = client.get(f"/incidents/{incident['slug']}")
    assert 'action="/incidents/' in page.text and "Een vraag stellen" in page.text

    answer = ask(client, incident)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/incidents/{incident['slug']}?lang=nl&asked=1#ask"
    thanked = client.get(answer.headers["location"])
    assert "Bedankt, uw vraag is bij het communicatieteam." in thanked.text

    inbox = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert [(q["channel"], q["text"], q["incident_id"], q["language"]) for q in inbox] == [
        ("web", QUESTION, incident["id"], "nl")
    ]


def test_the_answer_is_published_on_the_timeline(client, officer):
    incident = new_incident(client, officer)
    ask(client, incident, "Is the ferry at Mook still running?", lang="en")
    [question] = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert question["language"] == "en"
    path = f"/api/v1/questions/{question['id']}/answer"
    private = client.post(path, json={"body": "Yes.", "public": False}, headers=auth(officer))
    assert private.status_code == 409  # nobody to send it to

    answer = {"body": "No, the ferry stops at 18:00 today.", "public": True}
    assert client.post(path, json=answer, headers=auth(officer)).status_code == 201
    page = client.get(f"/incidents/{incident['slug']}?lang=en").text
    assert "Is the ferry at Mook still running?" in page and "the ferry stops at 18:00" in page


def test_a_robot_filling_the_hidden_field_is_thanked_and_ignored(client, officer):
    incident = new_incident(client, officer)
    answer = ask(client, incident, "Cheap pills", website="http://spam.example")
    assert answer.status_code == 303 and stored(client) == []


def test_another_site_cannot_post_questions(client, officer):
    incident = new_incident(client, officer)
    answer = client.post(
        f"/incidents/{incident['slug']}/questions",
        data={"question": QUESTION},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and stored(client) == []


def test_a_long_question_is_refused_in_dutch_and_kept_for_another_try(client, officer):
    incident = new_incident(client, officer)
    text = "Waarom? " * 200  # 1,600 characters
    answer = ask(client, incident, text)
    assert answer.status_code == 422
    assert "De vraag is langer dan 1000 tekens." in answer.text
    kept = re.search(r'<textarea id="question"[^>]*>([^<]*)</textarea>', answer.text)[1]
    assert kept.strip() == text.strip()
    assert stored(client) == []


def test_one_address_asks_five_an_hour_and_others_still_can(client, officer):
    incident = new_incident(client, officer)
    for n in range(5):
        assert ask(client, incident, f"Vraag {n}").status_code == 303
    refused = ask(client, incident, "Vraag 6")
    assert refused.status_code == 429 and 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert "Te veel vragen tegelijk; probeer het later opnieuw." in refused.text
    neighbour = TestClient(client.app, client=("192.0.2.44", 50000))
    assert ask(neighbour, incident, "Vraag van de buren").status_code == 303
    assert len(stored(client)) == 6


def test_a_resolved_incident_takes_no_more_questions(client, officer):
    incident = new_incident(client, officer)
    resolve = {"body": "Het water zakt; alles is weer veilig."}
    client.post(f"/api/v1/incidents/{incident['id']}/resolve", json=resolve, headers=auth(officer))
    assert "Een vraag stellen" not in client.get(f"/incidents/{incident['slug']}").text
    assert ask(client, incident).status_code == 409 and stored(client) == []
