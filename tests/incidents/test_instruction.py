"""Item 10 of issue 17: the pinned instruction "Wat moet u nu doen". Versioned like updates (a
change is in the open, the previous version readable), cleared by an officer, at the top of the
public pages (whose cached copies it drops), in the incident's JSON, audited."""

from __future__ import annotations

from html import unescape

import pytest

from broadcast import audit
from tests.support import (
    auth,
    csrf_of,
    log_in,
    new_incident,
    post_form,
    post_update,
    token_for,
    wait_for,
)


def put(client, token, incident_id, body):
    return client.put(
        f"/api/v1/incidents/{incident_id}/instruction", json={"body": body}, headers=auth(token)
    )


def detail(client, token, incident_id) -> dict:
    return client.get(f"/api/v1/incidents/{incident_id}", headers=auth(token)).json()


@pytest.fixture
def officer(client):
    return token_for(client.app, "officer", name="lotte")


def test_pin_change_and_clear_are_versions_in_the_open(client, officer):
    incident = new_incident(client, officer)
    assert detail(client, officer, incident["id"])["instruction"] is None

    first = put(client, officer, incident["id"], {"nl": "Blijf binnen.", "en": "Stay inside."})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["previous"] is None
    assert (
        put(client, officer, incident["id"], {"nl": "Blijf binnen.", "en": "Stay inside."}).json()[
            "version"
        ]
        == 1
    )  # the same text again is no change

    changed = put(client, officer, incident["id"], "Ga naar de sporthal.").json()
    assert changed["version"] == 2 and changed["body"] == {"nl": "Ga naar de sporthal."}
    assert changed["previous"]["body"] == {"nl": "Blijf binnen.", "en": "Stay inside."}
    assert detail(client, officer, incident["id"])["instruction"] == changed

    cleared = client.delete(
        f"/api/v1/incidents/{incident['id']}/instruction", headers=auth(officer)
    )
    assert cleared.status_code == 204
    assert detail(client, officer, incident["id"])["instruction"] is None
    again = client.delete(f"/api/v1/incidents/{incident['id']}/instruction", headers=auth(officer))
    assert again.status_code == 204  # nothing pinned: nothing to do

    with client.app.state.db.session_scope() as session:
        actions = [
            (e.action, e.detail.get("version"))
            for e in audit.recent(session, subject=f"incident:{incident['id']}")
            if e.action.startswith("instruction.")
        ]
    assert sorted(actions) == [
        ("instruction.change", 2),
        ("instruction.clear", 3),
        ("instruction.pin", 1),
    ]


def test_bad_instructions_are_refused_and_only_officers_pin(client, officer):
    incident = new_incident(client, officer)
    too_long = put(client, officer, incident["id"], "x" * 281)
    assert too_long.status_code == 422
    no_dutch = put(client, officer, incident["id"], {"en": "Stay inside."})
    assert no_dutch.status_code == 422 and no_dutch.json()["detail"] == "the Dutch text is required"
    blank = put(client, officer, incident["id"], "Ga naar [locatie].")
    assert blank.status_code == 422 and blank.json()["placeholders"] == ["locatie"]
    volunteer = token_for(client.app, "volunteer", name="anna")
    assert put(client, volunteer, incident["id"], "Blijf binnen.").status_code == 403
    assert (
        client.delete(
            f"/api/v1/incidents/{incident['id']}/instruction", headers=auth(volunteer)
        ).status_code
        == 403
    )
    assert put(client, officer, 999_999, "Blijf binnen.").status_code == 404
    assert detail(client, officer, incident["id"])["instruction"] is None


def test_the_public_pages_show_it_at_the_top_with_its_change_and_when_they_changed(client, officer):
    incident = new_incident(client, officer, title="Hoogwater Maas")
    post_update(client, officer, incident["id"], body="Het water stijgt.")
    page = f"/incidents/{incident['slug']}"
    before = client.get(page).text  # now cached: pinning must drop this copy
    assert "Wat moet u nu doen" not in before and "Laatst bijgewerkt:" in before
    assert client.get("/").text.count("Wat moet u nu doen") == 0

    put(client, officer, incident["id"], {"nl": "Blijf binnen.", "en": "Stay inside."})
    # On PostgreSQL the change reaches the cache by NOTIFY, a moment after the answer.
    wait_for(lambda: "Blijf binnen." in client.get(page).text)
    shown = unescape(client.get(page).text)
    assert shown.index("Wat moet u nu doen") < shown.index("Het water stijgt.")
    assert "Sinds " in shown and "Gewijzigd om" not in shown
    wait_for(lambda: "Blijf binnen." in client.get("/").text)
    assert "Stay inside." in client.get(f"{page}?lang=en").text
    assert "Wat moet u nu doen" in client.get(f"{page}?lang=nl").text  # Dutch again from here

    put(client, officer, incident["id"], "Ga naar de sporthal.")
    wait_for(lambda: "Ga naar de sporthal." in client.get(page).text)
    shown = unescape(client.get(page).text)
    assert "Gewijzigd om " in shown
    assert "<summary>Vorige versie</summary>" in shown and "<del>Blijf binnen.</del>" in shown
    wait_for(lambda: "Ga naar de sporthal." in client.get("/").text)
    assert "Gewijzigd om " in unescape(client.get("/").text)

    client.delete(f"/api/v1/incidents/{incident['id']}/instruction", headers=auth(officer))
    wait_for(lambda: "Ga naar de sporthal." not in client.get(page).text)
    wait_for(lambda: "Ga naar de sporthal." not in client.get("/").text)
    assert "Wat moet u nu doen" not in client.get(page).text


def test_officers_pin_change_and_clear_in_the_console(client, officer):
    incident = new_incident(client, officer)
    assert log_in(client, "lotte").status_code == 303
    here = f"/console/incidents/{incident['id']}"
    csrf = csrf_of(client, here)
    pinned = post_form(client, f"{here}/instruction", {"body_nl": "Blijf binnen."}, csrf=csrf)
    assert pinned.status_code == 303
    changed = post_form(
        client, f"{here}/instruction", {"body_nl": "Ga naar de sporthal.", "body_en": ""}, csrf=csrf
    )
    assert changed.status_code == 303
    page = unescape(client.get(here).text)
    assert "Instructie gewijzigd; de vorige versie blijft zichtbaar." in page
    assert "Versie 2" in page and "<del>Blijf binnen.</del>" in page

    refused = post_form(
        client, f"{here}/instruction", {"body_nl": "Bel [telefoonnummer]."}, csrf=csrf
    )
    assert refused.status_code == 422
    kept = unescape(refused.text)
    assert "Niet vastgezet: vul eerst de open plekken" in kept
    assert ">Bel [telefoonnummer].</textarea>" in kept

    cleared = post_form(client, f"{here}/instruction/clear", {}, csrf=csrf)
    assert cleared.status_code == 303
    assert detail(client, officer, incident["id"])["instruction"] is None
    assert "Er staat geen instructie vast." in client.get(here).text


def test_volunteers_cannot_pin_in_the_console(client, officer):
    incident = new_incident(client, officer)
    token_for(client.app, "volunteer", name="anna")
    assert log_in(client, "anna").status_code == 303
    here = f"/console/incidents/{incident['id']}"
    csrf = csrf_of(client, here)
    assert 'action="' + here + '/instruction"' not in client.get(here).text
    refused = post_form(client, f"{here}/instruction", {"body_nl": "Blijf binnen."}, csrf=csrf)
    assert refused.status_code == 403
    assert detail(client, officer, incident["id"])["instruction"] is None
