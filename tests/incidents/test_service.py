"""Incidents: slugs, creation, the overdue promise and resolving, on the service itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from broadcast.common import utcnow
from broadcast.errors import Conflict, Invalid
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.timeline.models import UpdateKind


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Hoogwater Maas", "hoogwater-maas"),
        ("Dijkdoorbraak bij Mook & Middelaar!", "dijkdoorbraak-bij-mook-middelaar"),
        ("Évacuatie — Plasmolen", "evacuatie-plasmolen"),
        ("???", "incident"),
        ("x" * 200, "x" * 80),
    ],
)
def test_a_slug_is_readable_ascii_of_bounded_length(title, slug):
    assert incidents.slugify(title) == slug


def test_two_incidents_with_one_title_on_one_day_get_different_slugs(store):
    with store.db.session_scope() as session:
        first = incidents.create(session, title="Hoogwater", severity="warning", area_codes=[])
        second = incidents.create(session, title=" Hoogwater ", severity="warning", area_codes=[])
        assert second.slug == f"{first.slug}-2"
        assert incidents.by_slug(session, second.slug).id == second.id


def test_an_incident_needs_a_title_and_known_areas(store):
    with store.db.session_scope() as session:
        with pytest.raises(Invalid):
            incidents.create(session, title="  ", severity="info", area_codes=[])
        with pytest.raises(Invalid):
            incidents.create(session, title="Storm", severity="info", area_codes=["atlantis"])


def test_only_an_open_incident_with_a_late_promise_is_overdue(store):
    now = utcnow()
    with store.db.session_scope() as session:
        for title, due, status in [
            ("late", now - timedelta(minutes=1), IncidentStatus.active),
            ("on time", now + timedelta(minutes=30), IncidentStatus.active),
            ("no promise", None, IncidentStatus.monitoring),
            ("late but resolved", now - timedelta(hours=1), IncidentStatus.resolved),
        ]:
            incident = incidents.create(session, title=title, severity="info", area_codes=[])
            incident.next_update_due, incident.status = due, status
        session.flush()
        late = session.exec(select(Incident.title).where(incidents.overdue(now))).all()
        open_ones = [i.title for i in incidents.listing(session, include_resolved=False)]
    assert late == ["late"]
    assert sorted(open_ones) == ["late", "no promise", "on time"]


def test_resolving_posts_the_all_clear_once_and_drops_the_promise(store):
    with store.db.session_scope() as session:
        officer, _token = add_user(session, name="adviseur", role=Role.officer)
        incident = incidents.create(session, title="Hoogwater", severity="warning", area_codes=[])
        incident.next_update_due = utcnow() + timedelta(hours=1)
        all_clear = incidents.resolve(
            session, incident, officer=officer, body="Het water is gezakt.", channels=store.channels
        )
        assert all_clear.kind == UpdateKind.all_clear
        assert incident.status == IncidentStatus.resolved and incident.resolved_at is not None
        assert incident.next_update_due is None
        with pytest.raises(Conflict):
            incidents.resolve(
                session, incident, officer=officer, body="Nog eens.", channels=store.channels
            )
