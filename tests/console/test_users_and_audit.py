"""The administrators' users page and the filtered audit page (issue 17, items 11 and 12), over
HTTP with the console's CSRF checks; effects are checked through the API and a second browser
session, so the page cannot just claim success."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from tests.support import ORIGIN, auth, csrf_of, log_in, new_incident, post_form, token_for


@pytest.fixture
def admin(client):
    token = token_for(client.app, "admin", name="beheer")
    assert log_in(client, "beheer").status_code == 303
    return token


def _other_browser(client) -> TestClient:
    return TestClient(client.app)


def _user_id(page: str, name: str) -> int:
    return int(re.search(rf'<tr id="user-(\d+)"[^>]*>\s*<th scope="row">{name}', page)[1])


def test_only_admins_see_and_use_the_users_page(client, admin):
    token_for(client.app, "officer", name="lotte")
    officer_browser = _other_browser(client)
    assert log_in(officer_browser, "lotte").status_code == 303
    officer_csrf = csrf_of(officer_browser)

    assert client.get("/console/users").status_code == 200
    assert officer_browser.get("/console/users").status_code == 403
    assert "/console/users" not in officer_browser.get("/console").text
    audit_page = officer_browser.get("/console/audit").text  # "Gebruiker 1", not a dead link
    assert "Gebruiker " in audit_page and 'href="/console/users' not in audit_page
    assert 'href="/console/users#user-' in client.get("/console/audit").text
    refused = post_form(
        officer_browser,
        "/console/users",
        {"name": "indringer", "role": "admin", "password": "x"},
        csrf=officer_csrf,
    )
    assert refused.status_code == 403
    assert "indringer" not in client.get("/console/users").text


def test_an_admin_adds_a_user_and_sees_the_token_once(client, admin):
    csrf = csrf_of(client, "/console/users")

    added = post_form(
        client,
        "/console/users",
        {"name": "anna", "role": "officer", "display_name": "Anna", "password": "wachtwoord"},
        csrf=csrf,
    )

    assert added.status_code == 200
    token = re.search(r'<code id="token-value">(bc_[^<]+)</code>', added.text)[1]
    assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 200
    assert token not in client.get("/console/users").text  # shown once
    assert log_in(_other_browser(client), "anna", "wachtwoord").status_code == 303


def test_deactivating_signs_the_user_out_of_a_live_session_and_kills_the_token(client, admin):
    officer = token_for(client.app, "officer", name="lotte")
    browser = _other_browser(client)
    assert log_in(browser, "lotte").status_code == 303
    assert browser.get("/console", follow_redirects=False).status_code == 200
    page = client.get("/console/users").text
    lotte = _user_id(page, "lotte")

    done = post_form(
        client, f"/console/users/{lotte}/active", {"active": "false"}, csrf=csrf_of(client)
    )

    assert done.status_code == 303
    assert (
        browser.get("/console", follow_redirects=False)
        .headers["location"]
        .startswith("/console/login")
    )
    assert client.get("/api/v1/incidents", headers=auth(officer)).status_code == 401
    assert log_in(_other_browser(client), "lotte").status_code == 401
    post_form(client, f"/console/users/{lotte}/active", {"active": "true"}, csrf=csrf_of(client))
    assert log_in(_other_browser(client), "lotte").status_code == 303
    assert client.get("/api/v1/incidents", headers=auth(officer)).status_code == 401  # for good


def test_role_password_and_token_from_the_page(client, admin):
    old = token_for(client.app, "volunteer", name="vera")
    vera = _user_id(client.get("/console/users").text, "vera")
    csrf = csrf_of(client)

    post_form(client, f"/console/users/{vera}/role", {"role": "officer"}, csrf=csrf)
    post_form(client, f"/console/users/{vera}/password", {"password": "nieuw"}, csrf=csrf)
    replaced = post_form(client, f"/console/users/{vera}/token", {}, csrf=csrf)

    new = re.search(r'<code id="token-value">(bc_[^<]+)</code>', replaced.text)[1]
    assert client.get("/api/v1/incidents", headers=auth(old)).status_code == 401
    created = client.post(
        "/api/v1/incidents",
        json={"title": "Storm", "severity": "info", "areas": []},
        headers=auth(new),
    )
    assert created.status_code == 201  # an officer now
    assert log_in(_other_browser(client), "vera", "nieuw").status_code == 303
    events = client.get("/api/v1/audit", params={"action": "user"}, headers=auth(admin)).json()
    assert [(e["actor"], e["action"]) for e in events["items"]][:3] == [
        ("beheer", "user.revoke_token"),
        ("beheer", "user.password"),
        ("beheer", "user.role"),
    ]


def test_the_last_admin_cannot_be_deactivated_or_demoted(client, admin):
    me = _user_id(client.get("/console/users").text, "beheer")

    refused = post_form(
        client, f"/console/users/{me}/active", {"active": "false"}, csrf=csrf_of(client)
    )

    assert refused.status_code == 303
    page = client.get("/console/users")
    assert "is de laatste actieve beheerder" in page.text
    assert client.get("/api/v1/incidents", headers=auth(admin)).status_code == 200


def test_forms_without_the_csrf_token_change_nothing(client, admin):
    token_for(client.app, "officer", name="lotte")
    lotte = _user_id(client.get("/console/users").text, "lotte")

    forged = client.post(f"/console/users/{lotte}/active", data={"active": "false"}, headers=ORIGIN)
    cross_site = post_form(
        client,
        f"/console/users/{lotte}/active",
        {"active": "false"},
        csrf=csrf_of(client),
        headers={"Origin": "https://evil.example"},
    )

    assert forged.status_code == 403
    assert cross_site.status_code == 403
    assert "deactivated" not in client.get("/console/users?lang=en").text


def test_the_audit_page_filters_links_and_exports_csv(client, admin):
    flood = new_incident(client, admin, title="Hoogwater")
    new_incident(client, admin, title="Storm")

    page = client.get("/console/audit", params={"incident_id": flood["id"]})
    exported = client.get("/console/audit.csv", params={"action": "incident.create"})

    assert page.status_code == 200
    assert f'href="/console/incidents/{flood["id"]}"' in page.text
    assert "Incident aangemaakt" in page.text  # the code, translated
    assert page.text.count("<tr><td>") == 1
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["incident.create", "incident.create"]
    bad = client.get("/console/audit", params={"since": "gisteren"})
    assert bad.status_code == 422
    assert "gisteren" in bad.text
