"""The questions inbox: residents ask (through an inbound channel), officers answer privately
through the same channel or publicly on the incident's timeline."""

from __future__ import annotations

from broadcast.questions import service as questions
from tests.support import auth, new_incident, wait_for


def _ask(
    client,
    text: str,
    *,
    channel: str = "webhook",
    address: str | None = None,
    incident_id: int | None = None,
    language: str = "nl",
) -> int:
    """What an inbound adapter does when a resident writes in (there is no public endpoint)."""
    with client.app.state.db.session_scope() as session:
        return questions.receive(
            session,
            channel=channel,
            text=text,
            address=address,
            language=language,
            incident_id=incident_id,
        ).id


def _listed(client, token: str, question_id: int) -> dict:
    response = client.get("/api/v1/questions", headers=auth(token))
    assert response.status_code == 200, response.text
    return next(q for q in response.json() if q["id"] == question_id)


def test_officers_see_the_questions_without_the_residents_address(client, officer, receiver):
    incident = new_incident(client, officer)
    address = f"{receiver.url}/q/resident-at-home"
    first = _ask(
        client, "Kan ik nog over de Heumensebaan?", address=address, incident_id=incident["id"]
    )
    second = _ask(
        client, "Where can I get sandbags?", address="http://127.0.0.1:9/other", language="en"
    )

    response = client.get("/api/v1/questions", headers=auth(officer))

    assert response.status_code == 200, response.text
    listed = response.json()
    assert [q["id"] for q in listed] == [second, first]
    assert listed[1]["text"] == "Kan ik nog over de Heumensebaan?"
    assert listed[1]["incident_id"] == incident["id"]
    assert listed[1]["channel"] == "webhook"
    assert listed[0]["language"] == "en"
    assert all(q["state"] == "new" and q["response_seconds"] is None for q in listed)
    assert all("address" not in q for q in listed)
    assert "resident-at-home" not in response.text
    assert "127.0.0.1:9/other" not in response.text


def test_questions_can_be_filtered_by_state(client, officer, receiver):
    answered = _ask(client, "Vraag een", address=f"{receiver.url}/q/1")
    waiting = _ask(client, "Vraag twee", address=f"{receiver.url}/q/2")
    client.post(
        f"/api/v1/questions/{answered}/answer", json={"body": "Antwoord."}, headers=auth(officer)
    )

    new = client.get("/api/v1/questions?state=new", headers=auth(officer)).json()
    done = client.get("/api/v1/questions?state=answered", headers=auth(officer)).json()

    assert [q["id"] for q in new] == [waiting]
    assert [q["id"] for q in done] == [answered]


def test_a_private_answer_goes_back_through_the_channel_it_came_in_on(
    client, officer, receiver, settle
):
    incident = new_incident(client, officer)
    question = _ask(
        client,
        "Is het drinkwater veilig?",
        address=f"{receiver.url}/q/resident",
        incident_id=incident["id"],
    )

    response = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "Ja, het kraanwater is veilig.", "public": False},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["kind"] == "answer"
    assert settle(answer["id"]) == {"webhook": {"delivered": 1}}
    arrived = wait_for(lambda: [r for r in receiver.state.received if r.path == "/q/resident"])
    assert len(arrived) == 1
    assert arrived[0].signature_ok
    assert "Ja, het kraanwater is veilig." in arrived[0].document["text"]
    listed = _listed(client, officer, question)
    assert listed["state"] == "answered"
    assert listed["answer"] == "Ja, het kraanwater is veilig."
    assert listed["answer_update_id"] == answer["id"]
    assert isinstance(listed["response_seconds"], float)
    assert 0 <= listed["response_seconds"] < 60
    # Private: not on the timeline, not on the public page.
    timeline = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    assert answer["id"] not in [u["id"] for u in timeline["updates"]]
    assert "kraanwater" not in client.get(f"/incidents/{incident['slug']}").text
    assert "kraanwater" not in client.get("/feed.atom").text


def test_a_question_is_answered_only_once(client, officer, receiver):
    question = _ask(client, "Wanneer gaat de school weer open?", address=f"{receiver.url}/q/1")
    first = client.post(
        f"/api/v1/questions/{question}/answer", json={"body": "Maandag."}, headers=auth(officer)
    )
    assert first.status_code == 201, first.text

    for body in [{"body": "Dinsdag."}, {"body": "Dinsdag.", "public": True}]:
        again = client.post(
            f"/api/v1/questions/{question}/answer", json=body, headers=auth(officer)
        )
        assert again.status_code == 409, (body, again.text)
        assert again.json()["detail"]

    assert _listed(client, officer, question)["answer"] == "Maandag."


def test_a_public_answer_appears_on_the_incident_timeline(client, officer, receiver, settle):
    incident = new_incident(client, officer)
    question = _ask(
        client,
        "Mag ik mijn auto op de dijk parkeren?",
        address=f"{receiver.url}/q/resident",
        incident_id=incident["id"],
    )

    response = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "Nee, de dijk moet vrij blijven.", "public": True},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["kind"] == "answer"
    assert answer["state"] == "published"
    timeline = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    listed = next(u for u in timeline["updates"] if u["id"] == answer["id"])
    assert "Nee, de dijk moet vrij blijven." in listed["body"]["nl"]
    assert "Mag ik mijn auto op de dijk parkeren?" in listed["body"]["nl"]
    page = client.get(f"/incidents/{incident['slug']}")
    assert "Nee, de dijk moet vrij blijven." in page.text
    assert f'id="update-{answer["id"]}"' in page.text
    # The resident who asked hears it too.
    settle(answer["id"])
    arrived = [r for r in receiver.state.received if r.path == "/q/resident"]
    assert [r.document["id"] for r in arrived] == [answer["id"]]
    assert _listed(client, officer, question)["state"] == "answered"


def test_a_public_answer_to_a_question_without_incident_can_name_one(client, officer):
    incident = new_incident(client, officer)
    question = _ask(client, "Is er een inzamelpunt voor zandzakken?")

    response = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "Ja, bij de gemeentewerf.", "public": True, "incident_id": incident["id"]},
        headers=auth(officer),
    )

    assert response.status_code == 201, response.text
    timeline = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    assert response.json()["id"] in [u["id"] for u in timeline["updates"]]


def test_a_public_answer_needs_an_incident(client, officer):
    question = _ask(
        client, "Is er een inzamelpunt voor zandzakken?", address="http://127.0.0.1:9/q"
    )

    response = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "Ja, bij de gemeentewerf.", "public": True},
        headers=auth(officer),
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    listed = _listed(client, officer, question)
    assert listed["state"] == "new"
    assert listed["answer"] is None


def test_invalid_answers_are_rejected(client, officer):
    incident = new_incident(client, officer)
    question = _ask(client, "Vraag?", address="http://127.0.0.1:9/q", incident_id=incident["id"])
    cases = {
        "empty": ({"body": ""}, 422),
        "blank": ({"body": "   "}, 422),
        "too long": ({"body": "x" * 4001}, 422),
        "no body": ({"public": True}, 422),
        "unknown incident": ({"body": "Antwoord.", "public": True, "incident_id": 999999}, 404),
    }
    for label, (body, expected) in cases.items():
        response = client.post(
            f"/api/v1/questions/{question}/answer", json=body, headers=auth(officer)
        )
        assert response.status_code == expected, (label, response.text)
        assert response.json()["detail"], label
    assert _listed(client, officer, question)["state"] == "new"


def test_a_question_without_reply_address_cannot_be_answered_privately(client, officer):
    question = _ask(client, "Anonieme vraag via het formulier.")

    response = client.post(
        f"/api/v1/questions/{question}/answer", json={"body": "Antwoord."}, headers=auth(officer)
    )

    assert response.status_code == 409, response.text
    assert _listed(client, officer, question)["state"] == "new"


def test_a_volunteer_cannot_read_a_private_answer(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    question = _ask(
        client,
        "Mijn moeder (88) woont alleen op Zandstraat 4, wie helpt haar?",
        address="http://127.0.0.1:9/q",
        incident_id=incident["id"],
    )
    answer = client.post(
        f"/api/v1/questions/{question}/answer",
        json={"body": "We sturen vanmiddag iemand naar Zandstraat 4."},
        headers=auth(officer),
    ).json()

    assert client.get(f"/api/v1/updates/{answer['id']}", headers=auth(officer)).status_code == 200
    response = client.get(f"/api/v1/updates/{answer['id']}", headers=auth(volunteer))
    assert response.status_code == 404, response.text


def test_a_private_answer_has_no_public_short_link(client, officer):
    incident = new_incident(client, officer)
    question = _ask(client, "Vraag?", address="http://127.0.0.1:9/q", incident_id=incident["id"])
    answer = client.post(
        f"/api/v1/questions/{question}/answer", json={"body": "Antwoord."}, headers=auth(officer)
    ).json()

    assert client.get(f"/u/{answer['id']}", follow_redirects=False).status_code == 404


def _resident(client, officer, name: str, areas: list[str], *, tester: bool = False) -> str:
    address = f"http://127.0.0.1:9/{name}"
    response = client.post(
        "/api/v1/subscribers",
        headers=auth(officer),
        json={"channel": "webhook", "address": address, "areas": areas, "tester": tester},
    )
    assert response.status_code == 201, response.text
    return address


def _attached(client, address: str | None) -> int | None:
    with client.app.state.db.session_scope() as session:
        return questions.incident_for(session, "webhook", address)


def test_a_question_attaches_by_the_residents_area_and_never_to_an_exercise(client, officer):
    one_open = new_incident(client, officer, title="Hoogwater Maas", areas=["mook"])
    assert _attached(client, None) == one_open["id"]  # the one open incident
    elsewhere = new_incident(client, officer, title="Stormschade", areas=["molenhoek"])
    drill = new_incident(client, officer, title="Oefening", areas=["mook"], exercise=True)
    in_mook = _resident(client, officer, "mook", ["mook"])
    in_molenhoek = _resident(client, officer, "molenhoek", ["molenhoek"])
    tester = _resident(client, officer, "tester", ["mook"], tester=True)

    assert _attached(client, in_mook) == one_open["id"]  # not the newer exercise
    assert _attached(client, in_molenhoek) == elsewhere["id"]
    assert _attached(client, tester) == drill["id"]
    assert _attached(client, None) is None  # two real incidents: an officer decides


def test_an_officer_moves_a_question_to_another_incident(client, officer):
    drill = new_incident(client, officer, exercise=True)
    real = new_incident(client, officer, title="Hoogwater Maas")
    question = _ask(client, "Is de dijk nog veilig?", incident_id=drill["id"])

    moved = client.post(
        f"/api/v1/questions/{question}/move",
        json={"incident_id": real["id"]},
        headers=auth(officer),
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["incident_id"] == real["id"]
    assert _listed(client, officer, question)["incident_id"] == real["id"]
    unknown = client.post(
        f"/api/v1/questions/{question}/move", json={"incident_id": 999999}, headers=auth(officer)
    )
    assert unknown.status_code == 404, unknown.text
    cleared = client.post(
        f"/api/v1/questions/{question}/move", json={"incident_id": None}, headers=auth(officer)
    )
    assert cleared.json()["incident_id"] is None
