"""The relay kit and relay records through the API, on both databases."""

from __future__ import annotations

import pytest
from sqlmodel import select

from broadcast.audit import AuditEvent
from tests.media.conftest import token_for
from tests.support import auth, new_incident, post_update


@pytest.fixture
def officer(client) -> str:
    return token_for(client.app, "officer", "olga", display_name="Olga Officier")


@pytest.fixture
def volunteer(client) -> str:
    return token_for(client.app, "volunteer", "vera", display_name="Vera Verbinder")


@pytest.fixture
def published(client, officer) -> dict:
    incident = new_incident(client, officer, areas=["mook", "molenhoek"])
    return post_update(
        client,
        officer,
        incident["id"],
        body={"nl": "Zandzakken bij de brandweerkazerne.", "en": "Sandbags at the fire station."},
    )


def kit_of(client, token, update_id: int, lang: str = "nl"):
    headers = auth(token) if token else {}
    return client.get(f"/api/v1/updates/{update_id}/relay-kit?lang={lang}", headers=headers)


def relay(client, token, update_id: int, **body):
    headers = auth(token) if token else {}
    return client.post(f"/api/v1/updates/{update_id}/relayed", json=body, headers=headers)


def test_a_volunteer_gets_the_kit_of_a_published_update(client, volunteer, published):
    response = kit_of(client, volunteer, published["id"])

    assert response.status_code == 200, response.text
    kit = response.json()
    link = f"http://127.0.0.1:8000/u/{published['id']}"
    assert (kit["update_id"], kit["language"], kit["link"]) == (published["id"], "nl", link)
    assert [f["key"] for f in kit["formats"]] == ["whatsapp", "facebook", "neighbourhood", "sms"]
    for fmt in kit["formats"]:
        assert fmt["text"].endswith(link) and fmt["length"] <= fmt["limit"]
        assert "Zandzakken bij de brandweerkazerne." in fmt["text"]
    assert kit["formats"][0]["text"].startswith("*Waarschuwing – Hoogwater Maas*")
    # The short link really leads to the update.
    followed = client.get(link.removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert (
        followed.status_code == 307 and f"#update-{published['id']}" in followed.headers["location"]
    )


def test_the_kit_in_english(client, volunteer, published):
    kit = kit_of(client, volunteer, published["id"], "en").json()

    assert kit["language"] == "en"
    assert kit["formats"][0]["label"] == "WhatsApp group"
    assert "Sandbags at the fire station." in kit["formats"][0]["text"]
    assert kit_of(client, volunteer, published["id"], "de").status_code == 422


def test_a_volunteers_approved_proposal_credits_them_in_every_format(client, officer, volunteer):
    incident = new_incident(client, officer)
    proposal = post_update(client, volunteer, incident["id"], body="Dijk bij Plasmolen lekt.")
    client.post(f"/api/v1/updates/{proposal['id']}/approve", headers=auth(officer))

    kit = kit_of(client, volunteer, proposal["id"]).json()

    for fmt in kit["formats"]:
        assert "Met dank aan Vera Verbinder" in fmt["text"], fmt["key"]


def test_an_exercise_is_marked(client, officer, volunteer):
    incident = new_incident(client, officer, exercise=True)
    update = post_update(client, officer, incident["id"], body="Oefening: dijk lekt.")

    for lang, marker in (("nl", "[OEFENING]"), ("en", "[EXERCISE]")):
        for fmt in kit_of(client, volunteer, update["id"], lang).json()["formats"]:
            assert marker in fmt["text"], (lang, fmt["key"])


def test_a_correction_says_so_and_the_corrected_original_has_no_kit(
    client, officer, volunteer, published
):
    correction = client.post(
        f"/api/v1/updates/{published['id']}/correct",
        headers=auth(officer),
        json={"body": "Zandzakken bij het gemeentehuis."},
    ).json()

    original = kit_of(client, volunteer, published["id"])
    assert original.status_code == 409
    assert f"corrected by update {correction['id']}" in original.json()["detail"]
    kit = kit_of(client, volunteer, correction["id"]).json()
    whatsapp = kit["formats"][0]["text"]
    assert whatsapp.startswith("*Correctie: Waarschuwing – Hoogwater Maas*")
    assert "dit corrigeert het eerdere bericht van" in whatsapp
    assert all("Correctie" in fmt["text"] for fmt in kit["formats"])


def test_no_kit_for_what_is_not_published(client, officer, volunteer):
    incident = new_incident(client, officer)
    draft = post_update(client, officer, incident["id"], draft=True)
    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")

    assert kit_of(client, officer, draft["id"]).status_code == 409
    assert "draft" in kit_of(client, officer, draft["id"]).json()["detail"]
    assert kit_of(client, volunteer, draft["id"]).status_code == 404  # not theirs to see
    assert kit_of(client, volunteer, proposal["id"]).status_code == 409  # pending approval
    assert kit_of(client, None, proposal["id"]).status_code == 401
    assert kit_of(client, volunteer, 999).status_code == 404


def test_a_retracted_update_has_no_kit(client, officer, volunteer, published):
    client.post(
        f"/api/v1/updates/{published['id']}/retract",
        json={"reason": "Onjuist"},
        headers=auth(officer),
    )

    assert kit_of(client, volunteer, published["id"]).status_code == 409


def test_relays_are_recorded_and_reported_per_area(client, officer, volunteer, published):
    wim = token_for(client.app, "volunteer", "wim")
    first = relay(
        client,
        volunteer,
        published["id"],
        format="whatsapp",
        where="WhatsApp-groep Molenhoek-Noord",
        areas=["molenhoek"],
    )
    assert first.status_code == 201, first.text
    assert first.json()["volunteer"] == "Vera Verbinder"
    assert first.json()["where"] == "WhatsApp-groep Molenhoek-Noord"
    relay(client, wim, published["id"], format="neighbourhood", areas=["mook", "molenhoek"])
    relay(client, officer, published["id"], format="facebook", where="Facebook Dorpsraad")

    response = client.get(f"/api/v1/updates/{published['id']}/relays", headers=auth(officer))

    assert response.status_code == 200
    report = response.json()
    assert report["total"] == 3
    assert report["by_area"] == {"molenhoek": 2, "mook": 1}
    assert report["without_area"] == 1
    assert report["by_format"] == {"whatsapp": 1, "neighbourhood": 1, "facebook": 1}
    assert [(r["volunteer"], r["format"], r["where"], r["areas"]) for r in report["relays"]] == [
        ("Vera Verbinder", "whatsapp", "WhatsApp-groep Molenhoek-Noord", ["molenhoek"]),
        ("wim", "neighbourhood", None, ["mook", "molenhoek"]),
        ("Olga Officier", "facebook", "Facebook Dorpsraad", []),
    ]
    with client.app.state.db.session_scope() as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "update.relayed"))
        assert [(e.actor, e.detail["format"]) for e in audited] == [
            ("vera", "whatsapp"),
            ("wim", "neighbourhood"),
            ("olga", "facebook"),
        ]


def test_only_officers_see_the_relay_report(client, officer, volunteer, published):
    relays = f"/api/v1/updates/{published['id']}/relays"
    assert client.get(relays, headers=auth(volunteer)).status_code == 403
    assert client.get(relays).status_code == 401
    assert client.get("/api/v1/updates/999/relays", headers=auth(officer)).status_code == 404


def test_invalid_relays_are_refused(client, officer, volunteer, published):
    assert relay(client, volunteer, published["id"], format="telex").status_code == 422
    unknown = relay(client, volunteer, published["id"], format="sms", areas=["atlantis"])
    assert unknown.status_code == 422 and "atlantis" in unknown.json()["detail"]
    assert (
        relay(client, volunteer, published["id"], format="sms", where="x" * 201).status_code == 422
    )
    assert relay(client, None, published["id"], format="sms").status_code == 401
    draft = post_update(client, officer, published["incident_id"], draft=True)
    assert relay(client, officer, draft["id"], format="sms").status_code == 409
    assert (
        client.get(f"/api/v1/updates/{published['id']}/relays", headers=auth(officer)).json()[
            "total"
        ]
        == 0
    )
