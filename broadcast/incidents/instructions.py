"""The pinned instruction of an incident, "Wat moet u nu doen": one short text per language,
versioned. Pinning, changing and clearing each add a version; nothing is edited in place, so a
changed instruction says so on the public page and the previous one stays readable."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from broadcast import audit
from broadcast.auth.models import User
from broadcast.common import as_bodies, stored_id
from broadcast.db import emit
from broadcast.errors import Conflict, Invalid
from broadcast.i18n import LANGUAGES, _
from broadcast.incidents.models import Incident, IncidentStatus, Instruction
from broadcast.timeline.placeholders import check_filled

MAX_CHARS = 280  # per language: it must be read at a glance, and fit one Telegram line block


def current(session: Session, incident_id: int) -> Instruction | None:
    """The instruction in force: the newest version, unless that one cleared it."""
    newest = _newest(session, incident_id)
    return None if newest is None or newest.cleared else newest


def previous(session: Session, instruction: Instruction) -> Instruction | None:
    """The version before this one that had a text (what a change replaced)."""
    query = (
        select(Instruction)
        .where(
            Instruction.incident_id == instruction.incident_id,
            col(Instruction.version) < instruction.version,
        )
        .order_by(col(Instruction.version).desc())
    )
    return next((row for row in session.exec(query) if not row.cleared), None)


def history(session: Session, incident_id: int) -> list[Instruction]:
    """Every version, newest first (cleared ones included)."""
    query = select(Instruction).where(Instruction.incident_id == incident_id)
    return list(session.exec(query.order_by(col(Instruction.version).desc())))


def current_for(session: Session, incident_ids: list[int]) -> dict[int, Instruction]:
    """The instruction in force of each incident that has one (for the status page)."""
    if not incident_ids:
        return {}
    newest = (
        select(Instruction.incident_id, func.max(Instruction.version).label("version"))
        .where(col(Instruction.incident_id).in_(incident_ids))
        .group_by(col(Instruction.incident_id))
        .subquery()
    )
    query = select(Instruction).join(
        newest,
        (col(Instruction.incident_id) == newest.c.incident_id)
        & (col(Instruction.version) == newest.c.version),
    )
    return {row.incident_id: row for row in session.exec(query) if not row.cleared}


def pin(session: Session, incident: Incident, *, body: str | dict, officer: User) -> Instruction:
    """Pin the instruction, or change it (a new version); the same text again changes nothing."""
    if incident.status == IncidentStatus.resolved:
        raise Conflict(_("the incident is resolved; nothing more is published on it"))
    bodies = _check(body)
    now_in_force = current(session, stored_id(incident))
    if now_in_force is not None and now_in_force.body == bodies:
        return now_in_force
    action = "instruction.pin" if now_in_force is None else "instruction.change"
    return _add(session, incident, bodies, officer, action)


def clear(session: Session, incident: Incident, *, officer: User) -> Instruction | None:
    """Take the instruction down (a version without text); nothing pinned: nothing happens."""
    if current(session, stored_id(incident)) is None:
        return None
    return _add(session, incident, {}, officer, "instruction.clear")


def _add(
    session: Session, incident: Incident, bodies: dict[str, str], officer: User, action: str
) -> Instruction:
    newest = _newest(session, stored_id(incident))
    version = Instruction(
        incident_id=stored_id(incident),
        version=(newest.version if newest else 0) + 1,
        body=bodies,
        author_id=officer.id,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action=action,
        subject=f"incident:{incident.id}",
        version=version.version,
    )
    # The public pages drop their copies; open pages of the incident get the new text.
    emit(session, "instruction", incident_id=incident.id, slug=incident.slug)
    return version


def _newest(session: Session, incident_id: int) -> Instruction | None:
    query = select(Instruction).where(Instruction.incident_id == incident_id)
    return session.exec(query.order_by(col(Instruction.version).desc()).limit(1)).first()


def _check(body: str | dict) -> dict[str, str]:
    bodies = {lang: text.strip() for lang, text in as_bodies(body).items() if text.strip()}
    if "nl" not in bodies:
        raise Invalid(_("the Dutch text is required"))
    if unknown := set(bodies) - set(LANGUAGES):
        raise Invalid(
            _("unsupported language(s): %(languages)s; use nl or en"),
            languages=", ".join(sorted(unknown)),
        )
    if too_long := [lang for lang, text in bodies.items() if len(text) > MAX_CHARS]:
        raise Invalid(
            _("the instruction is too long in %(languages)s: at most %(most)s characters"),
            languages=", ".join(too_long),
            most=MAX_CHARS,
        )
    check_filled(bodies)
    return bodies
