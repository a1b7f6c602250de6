"""What residents and operators see without a token: the status page, incident timelines, the
Atom feed, short links, health, metrics and the API documentation."""

from __future__ import annotations

import re
from datetime import timedelta

import feedparser
from fastapi.testclient import TestClient

from broadcast.common import utcnow
from broadcast.incidents.models import Incident
from broadcast.questions import service as questions
from tests.support import auth, new_incident, post_update

BASE = "http://127.0.0.1:8000"


def test_the_status_page_shows_active_incidents_with_their_latest_update(client, officer):
    active = new_incident(client, officer, title="Hoogwater Maas")
    post_update(client, officer, active["id"], body="Eerste bericht.")
    post_update(client, officer, active["id"], body="Laatste stand: 12,40 m.")
    done = new_incident(client, officer, title="Stroomstoring Molenhoek", areas=["molenhoek"])
    client.post(
        f"/api/v1/incidents/{done['id']}/resolve",
        json={"body": "Stroom terug."},
        headers=auth(officer),
    )

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="nl">' in page.text
    active_part, resolved_part = page.text.split('id="resolved-heading"')
    assert "Hoogwater Maas" in active_part
    assert f'href="/incidents/{active["slug"]}"' in active_part
    assert "Laatste stand: 12,40 m." in active_part
    assert "Stroomstoring Molenhoek" not in active_part
    assert "Stroomstoring Molenhoek" in resolved_part


def test_the_status_page_says_when_nothing_is_going_on(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "Er zijn op dit moment geen incidenten." in page.text


def test_the_incident_page_shows_corrections_retractions_and_nothing_unpublished(
    client, token_for, officer
):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    kept = post_update(client, officer, incident["id"], body="Zandzakken bij de kerk.")
    wrong = post_update(client, officer, incident["id"], body="Het water staat op 3 meter.")
    correction = client.post(
        f"/api/v1/updates/{wrong['id']}/correct",
        json={"body": "Het water staat op 2 meter."},
        headers=auth(officer),
    ).json()
    rumour = post_update(client, officer, incident["id"], body="De Maasbrug is dicht.")
    client.post(
        f"/api/v1/updates/{rumour['id']}/retract",
        json={"reason": "De brug is gewoon open."},
        headers=auth(officer),
    )
    post_update(client, volunteer, incident["id"], body="Voorstel van een vrijwilliger.")
    post_update(client, officer, incident["id"], body="Nog een concept.", draft=True)

    page = client.get(f"/incidents/{incident['slug']}")

    assert page.status_code == 200
    assert "Hoogwater Maas" in page.text
    assert '<p class="body">Zandzakken bij de kerk.</p>' in page.text
    assert re.search(r'<del class="body">\s*Het water staat op 3 meter.\s*</del>', page.text)
    assert '<p class="body">Het water staat op 2 meter.</p>' in page.text
    assert f'href="#update-{correction["id"]}"' in page.text  # the original points at it
    assert re.search(r'<del class="body">\s*De Maasbrug is dicht.\s*</del>', page.text)
    assert "Ingetrokken" in page.text
    assert "De brug is gewoon open." in page.text
    assert "Voorstel van een vrijwilliger." not in page.text
    assert "Nog een concept." not in page.text
    assert f'id="update-{kept["id"]}"' in page.text


def test_an_unknown_incident_page_is_a_404(client):
    assert client.get("/incidents/2020-01-01-no-such-thing").status_code == 404


def test_english_is_chosen_with_lang_and_then_remembered(client, officer):
    incident = new_incident(client, officer)
    post_update(
        client,
        officer,
        incident["id"],
        body={"nl": "Dijk bij Mook versterkt.", "en": "Dike at Mook reinforced."},
    )
    page = f"/incidents/{incident['slug']}"

    dutch = client.get(page)
    assert "Dijk bij Mook versterkt." in dutch.text
    assert "Dike at Mook reinforced." not in dutch.text
    assert "set-cookie" not in dutch.headers

    english = client.get(f"{page}?lang=en")
    assert "Dike at Mook reinforced." in english.text
    assert "Dijk bij Mook versterkt." not in english.text
    assert '<html lang="en">' in english.text
    assert re.search(r"\blang=en\b", english.headers["set-cookie"])

    remembered = client.get(page)
    assert "Dike at Mook reinforced." in remembered.text
    assert "Timeline" in remembered.text

    back = client.get(f"{page}?lang=nl")
    assert "Dijk bij Mook versterkt." in back.text
    assert "Dijk bij Mook versterkt." in client.get(page).text


def test_an_unknown_language_falls_back_to_dutch(client, officer):
    incident = new_incident(client, officer)
    post_update(client, officer, incident["id"], body={"nl": "Nederlands.", "en": "English."})
    page = client.get(f"/incidents/{incident['slug']}?lang=fr")
    assert "Nederlands." in page.text
    assert "set-cookie" not in page.headers


def test_the_atom_feed_is_valid_and_carries_the_dutch_text(client, officer):
    incident = new_incident(client, officer, title="Hoogwater Maas")
    first = post_update(
        client,
        officer,
        incident["id"],
        body={"nl": "Dijk bij Mook versterkt.", "en": "Dike at Mook reinforced."},
    )
    rumour = post_update(client, officer, incident["id"], body="De Maasbrug is dicht.")
    client.post(
        f"/api/v1/updates/{rumour['id']}/retract",
        json={"reason": "Onjuist."},
        headers=auth(officer),
    )
    post_update(client, officer, incident["id"], body="Nog een concept.", draft=True)

    response = client.get("/feed.atom")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    entries = {e.id: e for e in feed.entries}
    assert f"{BASE}/u/{first['id']}" in entries
    entry = entries[f"{BASE}/u/{first['id']}"]
    assert entry.content[0].value == "Dijk bij Mook versterkt."
    assert "Hoogwater Maas" in entry.title
    assert entry.link == f"{BASE}/incidents/{incident['slug']}#update-{first['id']}"
    retracted = entries[f"{BASE}/u/{rumour['id']}"].content[0].value
    assert retracted.startswith("[Ingetrokken: Onjuist.]")
    assert len(entries) == 3  # first, the retracted one and the retraction notice
    assert "Nog een concept." not in response.text


def test_a_short_link_redirects_to_the_update_on_its_incident_page(client, token_for, officer):
    volunteer = token_for("volunteer", "vera")
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    proposal = post_update(client, volunteer, incident["id"])

    response = client.get(f"/u/{update['id']}", follow_redirects=False)

    assert response.status_code in (301, 302, 303, 307, 308)
    assert response.headers["location"] == f"/incidents/{incident['slug']}#update-{update['id']}"
    followed = client.get(f"/u/{update['id']}")
    assert followed.status_code == 200
    assert f'id="update-{update["id"]}"' in followed.text
    assert client.get(f"/u/{proposal['id']}", follow_redirects=False).status_code == 404
    assert client.get("/u/999999", follow_redirects=False).status_code == 404


def test_health_reports_the_database_and_which_channels_are_on(client, app_factory):
    response = client.get("/healthz")

    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["channels"] == {"on": ["platform", "webhook"], "off": {}}
    assert health["lanes_owned"] == []  # neither channel declares a limit: no lane to own

    # A second app beside the first (on PostgreSQL its scheduler is a follower, not started).
    with TestClient(app_factory(channels={})) as without_secret:
        channels = without_secret.get("/healthz").json()["channels"]
    assert channels["on"] == ["platform"]
    assert "BROADCAST_WEBHOOK_SECRET" in channels["off"]["webhook"]


def test_metrics_expose_deliveries_and_publish_to_send_latency(client, officer, settle):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    settle(update["id"])

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'broadcast_deliveries{channel="platform",state="delivered"} 1.0' in lines
    assert "# TYPE broadcast_publish_to_send_seconds histogram" in lines
    counts = [
        line
        for line in lines
        if line.startswith('broadcast_publish_to_send_seconds_count{channel="platform"}')
    ]
    assert counts and float(counts[0].split()[-1]) >= 1
    assert any(line.startswith("broadcast_queue_depth{") for line in lines)


def test_metrics_count_what_needs_attention(client, officer):
    """An overdue promised update and a waiting question: what an on-call alert watches."""
    incident = new_incident(client, officer)
    with client.app.state.db.session_scope() as session:
        session.get(Incident, incident["id"]).next_update_due = utcnow() - timedelta(minutes=5)
        questions.receive(session, channel="web", text="Is de dijk bij Mook nog veilig?")
    lines = client.get("/metrics").text.splitlines()
    assert "broadcast_incidents_overdue 1.0" in lines
    assert "broadcast_questions_waiting 1.0" in lines
    [oldest] = [line for line in lines if line.startswith("broadcast_questions_oldest_waiting_")]
    assert 0 <= float(oldest.split()[-1]) < 60


CONTRACT_PATHS = {
    "/api/v1/incidents": {"get", "post"},
    "/api/v1/incidents/{incident_id}": {"get"},
    "/api/v1/incidents/{incident_id}/updates": {"post"},
    "/api/v1/incidents/{incident_id}/resolve": {"post"},
    "/api/v1/updates/{update_id}/approve": {"post"},
    "/api/v1/updates/{update_id}/reject": {"post"},
    "/api/v1/updates/{update_id}/correct": {"post"},
    "/api/v1/updates/{update_id}/retract": {"post"},
    "/api/v1/updates/{update_id}/deliveries": {"get"},
    "/api/v1/subscribers": {"post"},
    "/api/v1/subscribers/{subscriber_id}": {"delete"},
    "/api/v1/questions": {"get"},
    "/api/v1/questions/{question_id}/answer": {"post"},
}


def test_the_api_is_documented(client):
    docs = client.get("/docs")
    spec = client.get("/openapi.json")

    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert "bearer" in str(spec.json()["components"]["securitySchemes"]).lower()


def test_other_ongoing_incidents_are_announced_on_every_incident_page(client, officer):
    flood = new_incident(client, officer, title="Hoogwater Maas")
    storm = new_incident(client, officer, title="Stormschade Plasmolen")
    page = client.get(f"/incidents/{flood['slug']}").text
    banner = page[page.index('class="banner"') : page.index("</aside>")]
    assert "Stormschade Plasmolen" in banner and "Hoogwater Maas" not in banner
    assert f"/incidents/{storm['slug']}" in banner
    assert "Hoogwater Maas" in client.get("/subscribe").text


def test_a_stale_link_shows_residents_a_page_and_programs_json(client):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/incidents/bestaat-niet", "/bestaat-niet"):
        page = client.get(path, headers=browser)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Deze pagina bestaat niet (meer)." in page.text and 'href="/"' in page.text
    assert client.get("/incidents/bestaat-niet").json() == {
        "detail": "incident 'bestaat-niet' not found"
    }
    api = client.get("/api/v1/bestaat-niet", headers=browser)
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
