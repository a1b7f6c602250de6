"""Serving media files: who sees what, with which headers, and removing them for good."""

from __future__ import annotations

from sqlmodel import select

from broadcast.audit import AuditEvent
from tests.media.conftest import jpeg_with_gps, mp4_with_location, token_for, upload
from tests.support import auth, post_update


def path_of(item: dict) -> str:
    return "/media/" + item["url"].rsplit("/", 1)[1]


def test_media_of_an_unpublished_update_is_hidden_from_anonymous_callers(client, officer, draft):
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()

    anonymous = client.get(path_of(item))
    assert anonymous.status_code == 404
    assert b"\xff\xd8" not in anonymous.content

    seen = client.get(path_of(item), headers=auth(officer))
    assert seen.status_code == 200
    assert seen.headers["content-type"] == "image/jpeg"
    assert seen.headers["cache-control"] == "private, no-store"
    assert seen.headers["x-content-type-options"] == "nosniff"
    assert seen.content.startswith(b"\xff\xd8\xff")


def test_once_published_everyone_sees_it_and_caches_may_keep_it(client, officer, draft):
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()
    approved = client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    assert approved.json()["state"] == "published"

    response = client.get(path_of(item))

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in response.headers["content-security-policy"]


def test_a_video_is_served_as_video(client, officer, draft):
    item = upload(client, officer, draft["id"], mp4_with_location(), content_type="video/mp4")
    item = item.json()
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))

    response = client.get(path_of(item))

    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"


def test_a_pending_proposal_shows_its_photos_to_its_volunteer_and_officers_only(
    client, officer, volunteer, incident
):
    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")
    item = upload(client, volunteer, proposal["id"], jpeg_with_gps()).json()
    other = token_for(client.app, "volunteer", "wim")

    assert client.get(path_of(item), headers=auth(volunteer)).status_code == 200
    assert client.get(path_of(item), headers=auth(officer)).status_code == 200
    assert client.get(path_of(item), headers=auth(other)).status_code == 404
    assert client.get(path_of(item)).status_code == 404
    assert client.get(path_of(item), headers=auth("bc_wrong")).status_code == 401


def test_a_rejected_proposals_photos_never_become_public(client, officer, volunteer, incident):
    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")
    item = upload(client, volunteer, proposal["id"], jpeg_with_gps()).json()
    client.post(f"/api/v1/updates/{proposal['id']}/reject", headers=auth(officer))

    assert client.get(path_of(item)).status_code == 404
    assert client.get(path_of(item), headers=auth(officer)).status_code == 200


def test_a_retracted_updates_photos_are_taken_off_the_public_site(client, officer, draft):
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    assert client.get(path_of(item)).status_code == 200

    client.post(
        f"/api/v1/updates/{draft['id']}/retract",
        json={"reason": "Verkeerde straat"},
        headers=auth(officer),
    )

    assert client.get(path_of(item)).status_code == 404


def test_names_that_are_not_ours_are_404(client):
    for name in ("../broadcast.db", "x.jpg", "a" * 32 + ".html", "%2e%2e%2fbroadcast.db"):
        assert client.get(f"/media/{name}").status_code == 404


def test_the_media_list_of_an_update(client, officer, volunteer, draft):
    first = upload(client, officer, draft["id"], jpeg_with_gps(), alt="Eerste").json()
    second = upload(client, officer, draft["id"], jpeg_with_gps(), alt="Tweede").json()

    response = client.get(f"/api/v1/updates/{draft['id']}/media", headers=auth(officer))

    assert response.status_code == 200
    assert [m["id"] for m in response.json()] == [first["id"], second["id"]]
    hidden = client.get(f"/api/v1/updates/{draft['id']}/media", headers=auth(volunteer))
    assert hidden.status_code == 404  # someone else's draft
    assert client.get(f"/api/v1/updates/{draft['id']}/media").status_code == 401


def test_an_officer_removes_an_item_and_its_file(client, officer, draft):
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    stored = client.app.state.settings.media_dir / path_of(item).rsplit("/", 1)[1]
    assert stored.is_file()

    response = client.delete(f"/api/v1/media/{item['id']}", headers=auth(officer))

    assert response.status_code == 204
    assert not stored.exists()
    assert client.get(path_of(item)).status_code == 404
    assert client.get(f"/api/v1/updates/{draft['id']}/media", headers=auth(officer)).json() == []
    with client.app.state.db.session_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "media.remove")).all()
    assert [(e.actor, e.detail["media"]) for e in events] == [("olga", item["id"])]
    assert client.delete(f"/api/v1/media/{item['id']}", headers=auth(officer)).status_code == 404


def test_who_may_remove(client, officer, volunteer, incident):
    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")
    own = upload(client, volunteer, proposal["id"], jpeg_with_gps()).json()
    draft = post_update(client, officer, incident["id"], draft=True)
    theirs = upload(client, officer, draft["id"], jpeg_with_gps()).json()

    assert client.delete(f"/api/v1/media/{theirs['id']}").status_code == 401
    as_volunteer = auth(volunteer)
    assert client.delete(f"/api/v1/media/{theirs['id']}", headers=as_volunteer).status_code == 403
    assert client.delete(f"/api/v1/media/{own['id']}", headers=as_volunteer).status_code == 204


def test_the_console_session_cookie_shows_a_pending_photo_to_the_officer(
    client, officer, volunteer, incident
):
    from broadcast.auth import sessions
    from broadcast.auth.models import User
    from broadcast.console.session import COOKIE

    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")
    item = upload(client, volunteer, proposal["id"], jpeg_with_gps()).json()
    with client.app.state.db.session_scope() as session:
        olga = session.exec(select(User).where(User.name == "olga")).first()
        cookie, _ = sessions.start(session, olga)

    client.cookies.set(COOKIE, cookie)
    assert client.get(path_of(item)).status_code == 200
    # Uploading needs the API token: a cookie alone does not prove the request is not forged.
    assert upload(client, None, proposal["id"], jpeg_with_gps()).status_code == 401
    client.cookies.set(COOKIE, "stale")
    assert client.get(path_of(item)).status_code == 404
