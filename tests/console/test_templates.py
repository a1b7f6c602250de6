"""Officers keep the message templates up to date in the console (issue 17, item 11): a change
to a shipped template, a new one and a removed one reach the compose form, are stored in the
database (not in the shipped file) and are in the audit log; volunteers may not."""

from __future__ import annotations

import html
import re

import pytest

from tests.support import auth, csrf_of, log_in, new_incident, post_form, token_for

SANDBAGS = "U kunt zandzakken ophalen bij het gemeentehuis, tot [tijd]."


@pytest.fixture
def officer(client):
    token = token_for(client.app, "officer", name="lotte")
    assert log_in(client, "lotte").status_code == 303
    return token


def _compose(client, incident_id: int, key: str) -> str:
    page = client.get(f"/console/incidents/{incident_id}", params={"template": key})
    assert page.status_code == 200
    body = re.search(r'<textarea id="body_nl"[^>]*>(.*?)</textarea>', page.text, re.S)[1]
    return html.unescape(body)


def test_an_officer_changes_adds_and_removes_templates(client, officer):
    shipped = client.app.state.settings.message_templates_file.read_bytes()
    incident = new_incident(client, officer)["id"]
    assert "Vraag een buur" in _compose(client, incident, "sandbags")
    csrf = csrf_of(client, "/console/templates")
    fields = {"severity": "advisory", "title_nl": "Zandzakken", "body_en": ""}

    changed = post_form(
        client, "/console/templates", fields | {"key": "sandbags", "body_nl": SANDBAGS}, csrf=csrf
    )
    added = post_form(
        client,
        "/console/templates",
        fields | {"key": "dijkwacht", "title_nl": "Dijkwacht", "body_nl": "Blijf van de dijk."},
        csrf=csrf,
    )
    removed = post_form(client, "/console/templates/delete", {"key": "road_closed"}, csrf=csrf)

    assert [r.status_code for r in (changed, added, removed)] == [303, 303, 303]
    assert _compose(client, incident, "sandbags") == SANDBAGS
    assert _compose(client, incident, "dijkwacht") == "Blijf van de dijk."
    assert _compose(client, incident, "road_closed") == ""  # no longer offered
    listing = client.get("/console/templates").text
    assert "(dijkwacht)" in listing and "(road_closed)" not in listing
    assert client.app.state.settings.message_templates_file.read_bytes() == shipped
    events = client.get("/api/v1/audit", params={"action": "template"}, headers=auth(officer))
    trail = [(e["actor"], e["action"], e["detail"]["key"]) for e in events.json()["items"]]
    assert trail == [
        ("lotte", "template.delete", "road_closed"),
        ("lotte", "template.save", "dijkwacht"),
        ("lotte", "template.save", "sandbags"),
    ]
    audit_page = client.get("/console/audit", params={"action": "template"}).text
    assert "Berichtsjabloon opgeslagen" in audit_page
    assert 'href="/console/templates#template-' in audit_page


@pytest.mark.parametrize(
    "fields",
    [
        {"key": "Met Spaties", "severity": "info", "body_nl": "Tekst."},
        {"key": "leeg", "severity": "info", "body_nl": "   "},
        {"key": "ernst", "severity": "rampzalig", "body_nl": "Tekst."},
        {"key": "lang", "severity": "info", "body_nl": "x" * 2001},
    ],
    ids=["key", "no Dutch", "severity", "too long"],
)
def test_bad_input_is_refused_and_nothing_is_stored(client, officer, fields):
    before = client.get("/console/templates").text

    refused = post_form(client, "/console/templates", fields, csrf=csrf_of(client))

    assert refused.status_code in (303, 422)
    assert client.get("/console/templates").text.count("<article") == before.count("<article")
    events = client.get("/api/v1/audit", params={"action": "template"}, headers=auth(officer))
    assert events.json()["items"] == []


def test_volunteers_may_not_edit_templates(client):
    token_for(client.app, "volunteer", name="vera")
    assert log_in(client, "vera").status_code == 303
    csrf = csrf_of(client)

    page = client.get("/console/templates")
    refused = post_form(
        client,
        "/console/templates",
        {"key": "sandbags", "severity": "info", "body_nl": "Gekaapt."},
        csrf=csrf,
    )

    assert page.status_code == 403
    assert refused.status_code == 403
