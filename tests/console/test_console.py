"""The console over HTTP: signing in, sessions, CSRF and origin checks, roles, and the actions
each form performs (checked through the JSON API, so the page cannot just claim success)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast import audit
from broadcast.auth.models import ConsoleSession
from broadcast.questions import service as questions
from broadcast.ratelimit import RateEvent
from tests.support import (
    ORIGIN,
    PASSWORD,
    auth,
    csrf_of,
    log_in,
    new_incident,
    post_form,
    post_update,
    token_for,
)


@pytest.fixture
def officer(client):
    token = token_for(client.app, "officer", name="lotte", display_name="Lotte de Wit")
    assert log_in(client, "lotte").status_code == 303
    return token


def test_anonymous_visitors_are_sent_to_the_login_form(client):
    response = client.get("/console/questions", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/questions"
    assert client.get("/console/login").status_code == 200


def test_a_wrong_password_is_refused_and_audited_without_the_name(client):
    token_for(client.app, "officer", name="lotte")
    response = log_in(client, "lotte", "wrong")
    assert response.status_code == 401
    assert "bc_session" not in response.cookies
    assert "Verkeerde gebruikersnaam of wachtwoord" in response.text
    with client.app.state.db.session_scope() as session:
        failed = [e for e in audit.recent(session) if e.action == "console.login_failed"]
    assert len(failed) == 1 and "lotte" not in str(failed[0].detail)


def test_after_five_wrong_passwords_that_address_waits_longer_and_longer(client):
    token_for(client.app, "officer", name="lotte")
    for _ in range(5):
        assert log_in(client, "lotte", "wrong").status_code == 401
    refused = log_in(client, "lotte")  # the right password, but the guessing slows down here
    assert refused.status_code == 429 and "bc_session" not in refused.cookies
    assert 50 < int(refused.headers["Retry-After"]) <= 60
    assert "Te veel mislukte pogingen. Probeer het over een minuut opnieuw." in refused.text

    age_failures(client, minutes=1)
    assert log_in(client, "lotte", "wrong").status_code == 401
    refused = log_in(client, "lotte")  # the next wait is twice as long
    assert refused.status_code == 429 and 110 < int(refused.headers["Retry-After"]) <= 120
    assert "Probeer het over 2 minuten opnieuw." in refused.text

    # Nobody can lock the team out of its console by typing wrong passwords for their names.
    elsewhere = TestClient(client.app, client=("192.0.2.7", 40000))
    assert log_in(elsewhere, "lotte").status_code == 303

    age_failures(client, minutes=2)
    assert log_in(client, "lotte").status_code == 303


def age_failures(client, *, minutes: int) -> None:
    """As if ``minutes`` had passed since every counted failure."""
    with client.app.state.db.session_scope() as session:
        for event in session.exec(select(RateEvent)):
            event.at -= timedelta(minutes=minutes)


def test_one_address_gets_twenty_wrong_logins_over_all_accounts(client):
    for n in range(20):
        assert log_in(client, f"medewerker{n}", "wrong").status_code == 401
    assert log_in(client, "nog-een-naam", "wrong").status_code == 429


def test_a_login_clears_its_count_and_no_typed_name_or_address_is_stored(client):
    token_for(client.app, "officer", name="lotte")
    log_in(client, "Geheim-Wachtwoord-Als-Naam", "x")  # a password typed into the name field
    for _ in range(4):
        assert log_in(client, "lotte", "wrong").status_code == 401
    assert log_in(client, "lotte").status_code == 303
    with client.app.state.db.session_scope() as session:
        left = session.exec(select(RateEvent)).all()
    # The other name's failure counts on (per account and address, and per address).
    assert sorted(e.kind for e in left) == ["login-account", "login-client"] + ["login-client"] * 4
    stored = str([(e.kind, e.key) for e in left])
    assert "Geheim" not in stored and "testclient" not in stored


def test_the_session_cookie_is_httponly_samesite_and_only_hashed_in_the_database(client):
    token_for(client.app, "officer", name="lotte")
    response = log_in(client, "lotte")
    cookie = next(h for h in response.headers.get_list("set-cookie") if "bc_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    value = re.search(r"bc_session=([^;]+)", cookie)[1]
    with client.app.state.db.session_scope() as session:
        stored = session.exec(select(ConsoleSession)).one()
    assert value not in (stored.token_hash, stored.csrf_token)


def test_the_cookie_is_secure_when_the_site_is_served_over_https(app_factory):
    with TestClient(app_factory(public_url="https://crisis.example.nl")) as client:
        token_for(client.app, "officer", name="lotte")
        cookie = log_in(client, "lotte").headers["set-cookie"]
    assert "Secure" in cookie


def test_login_never_redirects_to_another_site(client):
    token_for(client.app, "officer", name="lotte")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)[1]
    response = client.post(
        "/console/login",
        data={"username": "lotte", "password": PASSWORD, "next": "//evil.example/console"}
        | {"csrf": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"


def test_forms_without_the_csrf_token_or_from_another_site_change_nothing(client, officer):
    csrf = csrf_of(client)
    incident = {"title": "Hoogwater", "severity": "warning", "areas": ["mook"]}
    assert post_form(client, "/console/incidents", incident).status_code == 403
    assert post_form(client, "/console/incidents", incident, csrf="forged").status_code == 403
    foreign = {"Origin": "https://evil.example"}
    refused = post_form(client, "/console/incidents", incident, csrf=csrf, headers=foreign)
    assert refused.status_code == 403
    assert client.get("/api/v1/incidents", headers=auth(officer)).json() == []
    assert post_form(client, "/console/incidents", incident, csrf=csrf).status_code == 303
    assert len(client.get("/api/v1/incidents", headers=auth(officer)).json()) == 1


def test_logging_out_ends_the_session_for_good(client, officer):
    csrf = csrf_of(client)
    cookie = client.cookies.get("bc_session")
    assert post_form(client, "/console/logout", {}, csrf=csrf).status_code == 303
    client.cookies.set("bc_session", cookie)  # a copied cookie must not come back to life
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_every_page_carries_a_strict_content_security_policy(client, officer):
    for path in ("/", "/console", "/console/questions", "/feed.atom"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in policy


def test_an_officer_publishes_from_the_compose_form(client, officer):
    incident = new_incident(client, officer, areas=["mook", "molenhoek"])
    csrf = csrf_of(client, f"/console/incidents/{incident['id']}")
    response = post_form(
        client,
        f"/console/incidents/{incident['id']}/updates",
        {
            "body_nl": "De Maas stijgt.",
            "body_en": "The Maas is rising.",
            "severity": "warning",
            "areas": ["mook"],
            "when": "now",
            "next_update": "23:59",
        },
        csrf=csrf,
    )
    assert response.status_code == 303
    detail = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    [update] = detail["updates"]
    assert update["state"] == "published"
    assert update["body"] == {"nl": "De Maas stijgt.", "en": "The Maas is rising."}
    assert update["areas"] == ["mook"]
    assert detail["next_update_due"] is not None
    assert "Gepubliceerd." in client.get(response.headers["location"]).text


def test_a_refused_action_shows_why_and_changes_nothing(client, officer):
    incident = new_incident(client, officer)
    csrf = csrf_of(client, f"/console/incidents/{incident['id']}")
    response = post_form(
        client,
        f"/console/incidents/{incident['id']}/updates",
        {"body_nl": "Tekst", "when": "later", "publish_at": "morgen"},
        csrf=csrf,
    )
    assert response.status_code == 422  # the form again, as typed: nothing is lost
    page = response.text
    assert "morgen&#39; is geen tijd (gebruik 14:30" in page and 'role="alert"' in page
    assert ">Tekst</textarea>" in page and 'value="morgen"' in page
    detail = client.get(f"/api/v1/incidents/{incident['id']}", headers=auth(officer)).json()
    assert detail["updates"] == []


def test_a_volunteer_proposes_and_an_officer_approves_it(client, officer):
    incident = new_incident(client, officer)
    token_for(client.app, "volunteer", name="anna", display_name="Anna de Vries")
    volunteer = client.__class__(client.app)
    with volunteer:
        assert log_in(volunteer, "anna").status_code == 303
        csrf = csrf_of(volunteer, f"/console/incidents/{incident['id']}")
        sent = post_form(
            volunteer,
            f"/console/incidents/{incident['id']}/updates",
            {"body_nl": "Zandzakken liggen klaar bij de kerk.", "when": "now"},
            csrf=csrf,
        )
        assert sent.status_code == 303
        [proposal] = client.get(
            f"/api/v1/incidents/{incident['id']}", headers=auth(officer)
        ).json()["updates"]
        assert proposal["state"] == "pending_approval"
        # the volunteer may not approve their own proposal
        assert (
            post_form(
                volunteer, f"/console/updates/{proposal['id']}/approve", {}, csrf=csrf
            ).status_code
            == 403
        )
        assert "Wacht op goedkeuring" in volunteer.get("/console").text

    officer_csrf = csrf_of(client)
    assert proposal["body"]["nl"][:40] in client.get("/console").text  # in the approvals list
    approved = post_form(
        client, f"/console/updates/{proposal['id']}/approve", {}, csrf=officer_csrf
    )
    assert approved.status_code == 303
    update = client.get(f"/api/v1/updates/{proposal['id']}", headers=auth(officer)).json()
    assert update["state"] == "published" and update["credit"] == "Anna de Vries"


def test_corrections_and_retractions_from_the_console_stay_in_the_open(client, officer):
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"], body="De N271 is dicht.")
    csrf = csrf_of(client)
    post_form(
        client,
        f"/console/updates/{original['id']}/correct",
        {"body_nl": "De N271 is open."},
        csrf=csrf,
    )
    public = client.get(f"/incidents/{incident['slug']}").text
    assert "<del" in public and "De N271 is dicht." in public and "De N271 is open." in public
    correction = client.get(f"/api/v1/updates/{original['id']}", headers=auth(officer)).json()
    post_form(
        client,
        f"/console/updates/{correction['superseded_by']}/retract",
        {"reason": "Verkeerde weg genoemd."},
        csrf=csrf,
    )
    assert "Verkeerde weg genoemd." in client.get(f"/incidents/{incident['slug']}").text


def test_the_preview_shows_each_channel_and_plain_language_hints(client, officer):
    csrf = csrf_of(client)
    long_text = (
        "Teneinde de veiligheid te waarborgen verzoeken wij u " + "heel " * 40 + "vriendelijk."
    )
    response = client.post(
        "/console/preview",
        data={"body_nl": long_text, "severity": "warning", "incident_title": "Hoogwater"},
        headers=ORIGIN | {"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200
    result = response.json()
    channels = {p["channel"]: p for p in result["channels"]}
    assert channels["sms"]["unit"] == "segments" and channels["sms"]["length"] == 2
    assert channels["sms"]["encoding"] == "GSM-7"
    assert channels["mastodon"]["limit"] == 500
    assert channels["telegram"]["text"].startswith("Waarschuwing – Hoogwater")
    kinds = {(h["kind"], h["text"]) for h in result["hints"]}
    assert ("jargon", "teneinde") in kinds and ("jargon", "verzoeken") in kinds
    assert any(kind == "long_sentence" for kind, _ in kinds)
    forged = client.post("/console/preview", data={"body_nl": "x"}, headers=ORIGIN)
    assert forged.status_code == 403


def test_the_questions_inbox_answers_and_measures_response_times(client, officer):
    with client.app.state.db.session_scope() as session:
        question = questions.receive(
            session,
            channel="webhook",
            text="Is de Kerkstraat nog open?",
            address="http://127.0.0.1:9/resident-31612345678",
        )
        question_id = question.id
    page = client.get("/console/questions").text
    assert "Is de Kerkstraat nog open?" in page and "31612345678" not in page
    csrf = csrf_of(client, "/console/questions")
    post_form(
        client, f"/console/questions/{question_id}/answer", {"body": "Ja, tot 18:00."}, csrf=csrf
    )
    answered = client.get("/console/questions?state=answered").text
    assert "Ja, tot 18:00." in answered
    assert "1 beantwoord" in answered


def test_an_officer_moves_a_question_off_an_exercise_in_the_inbox(client, officer):
    drill = new_incident(client, officer, title="Oefening dijkdoorbraak", exercise=True)
    real = new_incident(client, officer, title="Hoogwater Maas")
    with client.app.state.db.session_scope() as session:
        question_id = questions.receive(
            session, channel="web", text="Moet ik weg?", incident_id=drill["id"]
        ).id
    page = client.get("/console/questions").text
    assert "[OEFENING] Oefening dijkdoorbraak" in page
    csrf = csrf_of(client, "/console/questions")

    moved = post_form(
        client, f"/console/questions/{question_id}/move", {"incident_id": real["id"]}, csrf=csrf
    )

    assert moved.status_code == 303
    assert "De vraag is verplaatst." in client.get("/console/questions").text
    listed = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert [q["incident_id"] for q in listed if q["id"] == question_id] == [real["id"]]
    post_form(client, f"/console/questions/{question_id}/move", {"incident_id": ""}, csrf=csrf)
    listed = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert [q["incident_id"] for q in listed if q["id"] == question_id] == [None]


def test_an_exercise_is_for_testers_unless_the_form_widens_it(client, officer):
    csrf = csrf_of(client)
    fields = {"title": "Oefening", "severity": "warning", "exercise": "true"}
    post_form(client, "/console/incidents", fields, csrf=csrf)
    post_form(client, "/console/incidents", fields | {"exercise_widened": "true"}, csrf=csrf)
    listed = client.get("/api/v1/incidents", headers=auth(officer)).json()
    assert [i["exercise_widened"] for i in listed[:2]] == [True, False]
    page = client.get(f"/console/incidents/{listed[1]['id']}").text
    assert "Oefening voor het testpubliek" in page


def test_the_dutch_console_counts_in_the_right_form_and_names_states_and_actions(client, officer):
    volunteer = token_for(client.app, "volunteer", name="anna")
    incident = new_incident(client, officer)
    post_update(client, volunteer, incident["id"], body="Eerste voorstel.")
    with client.app.state.db.session_scope() as session:
        questions.receive(session, channel="web", text="Vraag?", incident_id=incident["id"])
    page = client.get("/console").text
    assert "1</strong> voorstel wacht op goedkeuring" in page
    assert "1</strong> vraag wacht op antwoord" in page
    post_update(client, volunteer, incident["id"], body="Tweede voorstel.")
    assert "2</strong> voorstellen wachten op goedkeuring" in client.get("/console").text

    published = post_update(client, officer, incident["id"], body="Het water zakt.")
    deliveries = client.get(f"/console/updates/{published['id']}").text
    for state in ("Wacht", "Verstuurd", "Afgeleverd", "Mislukt", "Opgegeven", "Geannuleerd"):
        assert f'<th scope="col">{state}</th>' in deliveries
    assert "Bericht gepubliceerd" in deliveries and "update.publish" not in deliveries

    page = client.get("/console/audit").text
    log = page[page.index("<table") :]  # the filter form's options carry the codes as values
    assert "Bericht gepubliceerd" in log and "update.publish" not in log
    assert f'<a href="/console/updates/{published["id"]}">Bericht {published["id"]}</a>' in log
    assert f'<a href="/console/incidents/{incident["id"]}">Incident {incident["id"]}</a>' in log
    assert f"update:{published['id']}" not in log


def test_volunteers_cannot_open_the_officer_pages(client):
    token_for(client.app, "volunteer", name="anna")
    log_in(client, "anna")
    for path in ("/console/questions", "/console/audit"):
        assert client.get(path).status_code == 403, path


def test_pages_are_dutch_by_default_and_english_on_request(client, officer):
    assert "Overzicht" in client.get("/console").text
    english = client.get("/console?lang=en").text
    assert "Overview" in english and 'lang="en"' in english
    assert "Overview" in client.get("/console").text  # remembered in a cookie


def test_console_errors_are_pages_in_the_readers_language(client, officer):
    missing = client.get("/console/incidents/999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Er klopt iets niet" in missing.text
    token_for(client.app, "volunteer", name="anna")
    volunteer = client.__class__(client.app)
    with volunteer:
        log_in(volunteer, "anna")
        refused = volunteer.get("/console/audit")
    assert refused.status_code == 403
    assert "alleen communicatieadviseurs mogen dit doen" in refused.text


def test_a_volunteer_adds_a_photo_to_a_proposal_and_it_arrives_without_location(client, officer):
    from PIL import Image

    from tests.media.conftest import jpeg_with_gps

    incident = new_incident(client, officer)
    token_for(client.app, "volunteer", name="anna", display_name="Anna de Vries")
    volunteer = client.__class__(client.app)
    with volunteer:
        log_in(volunteer, "anna")
        csrf = csrf_of(volunteer, f"/console/incidents/{incident['id']}")
        post_form(
            volunteer,
            f"/console/incidents/{incident['id']}/updates",
            {"body_nl": "Het water staat tot de kade."},
            csrf=csrf,
        )
        [proposal] = client.get(
            f"/api/v1/incidents/{incident['id']}", headers=auth(officer)
        ).json()["updates"]
        upload = f"/console/updates/{proposal['id']}/media"
        photo = {"file": ("kade.jpg", jpeg_with_gps(), "image/jpeg")}
        forged = volunteer.post(
            upload + "?csrf=wrong",
            files=photo,
            data={"alt": "De kade"},
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert forged.status_code == 403
        added = volunteer.post(
            f"{upload}?csrf={csrf}",
            files=photo,
            data={"alt": "De kade"},
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert added.status_code == 303
        page = volunteer.get(added.headers["location"]).text
        assert "Foto toegevoegd" in page
        source = re.search(r'<img src="(/media/[^"]+)" alt="De kade"', page)[1]
        assert volunteer.get(source).status_code == 200  # the console cookie may read it
    anonymous = client.__class__(client.app)
    with anonymous:
        assert anonymous.get(source).status_code == 404  # not published yet
        officer_csrf = csrf_of(client)
        post_form(client, f"/console/updates/{proposal['id']}/approve", {}, csrf=officer_csrf)
        published = anonymous.get(source)
        assert published.status_code == 200
    assert not Image.open(io.BytesIO(published.content)).getexif()


def test_the_relay_kit_is_copied_and_noted_per_neighbourhood(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], body="De N271 is dicht bij Mook.")
    token_for(client.app, "volunteer", name="anna", display_name="Anna de Vries")
    volunteer = client.__class__(client.app)
    with volunteer:
        log_in(volunteer, "anna")
        page = volunteer.get(f"/console/updates/{update['id']}/relay").text
        assert "WhatsApp-groep" in page and f"/u/{update['id']}" in page
        csrf = csrf_of(volunteer, f"/console/updates/{update['id']}/relay")
        noted = post_form(
            volunteer,
            f"/console/updates/{update['id']}/relayed",
            {"format": "whatsapp", "place": "Buurtapp Heumensoord", "areas": "molenhoek"},
            csrf=csrf,
        )
        assert "Dank u wel" in volunteer.get(noted.headers["location"]).text
        own_view = volunteer.get(f"/console/updates/{update['id']}/relay").text
        assert "Gedeeld door buurtverbinders" not in own_view  # the report is for officers
    report = client.get(f"/console/updates/{update['id']}/relay").text
    assert "Anna de Vries" in report and "Buurtapp Heumensoord" in report
    assert "molenhoek: 1" in report


def test_the_overview_warns_officers_of_a_feed_that_keeps_failing(client, officer):
    from broadcast.feeds.models import FeedKind, FeedSource, FeedStatus

    with client.app.state.db.session_scope() as session:
        session.add(
            FeedSource(
                name="Maas bij Mook",
                url="http://127.0.0.1:9/mook.xml",
                kind=FeedKind.level,
                interval_seconds=300,
                status=FeedStatus.failing,
                last_error="HTTP 503",
                consecutive_failures=4,
                alerting=True,
            )
        )
    page = client.get("/console").text
    assert "Feed faalt" in page and "Maas bij Mook" in page and "HTTP 503" in page


def test_refusals_are_shown_in_the_readers_language_with_their_values(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], body="De N271 is dicht.")
    csrf = csrf_of(client)
    refused = post_form(
        client, f"/console/updates/{update['id']}/retract", {"reason": " "}, csrf=csrf
    )
    assert "bij intrekken hoort een reden" in client.get(refused.headers["location"]).text

    draft = post_update(client, officer, incident["id"], body="Foto volgt.", draft=True)
    client.app.state.settings.media_max_image_bytes = 1_000
    from tests.media.conftest import jpeg_with_gps

    too_big = client.post(
        f"/console/updates/{draft['id']}/media?csrf={csrf}",
        files={"file": ("kade.jpg", jpeg_with_gps(), "image/jpeg")},
        data={"alt": "De kade"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    page = client.get(too_big.headers["location"]).text
    assert "het bestand (image) is groter dan" in page and 'role="alert"' in page
