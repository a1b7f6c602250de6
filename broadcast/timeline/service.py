"""The timeline: post, approve, reject, publish, correct, retract. Published content is final.

Services add and flush; the caller's unit of work commits. Publishing and the expansion of the
audience into the outbox happen in one transaction, and the dispatcher is woken when it commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import Select

from broadcast import audit, paging
from broadcast.areas import service as areas
from broadcast.auth.models import Role, User
from broadcast.common import Severity, as_bodies, stored_id, utcnow
from broadcast.db import emit
from broadcast.delivery import queue
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.fanout import audience
from broadcast.i18n import LANGUAGES, _
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.timeline.models import Source, Update, UpdateKind, UpdateState
from broadcast.timeline.placeholders import check_filled

MAX_BODY_CHARS = 10_000
SCHEDULE_SLACK = timedelta(seconds=1)  # a publish_at this close to now means "now"


def get(session: Session, update_id: int) -> Update:
    update = session.get(Update, update_id)
    if update is None:
        raise NotFound(_("update %(id)s not found"), id=update_id)
    return update


def for_incident(
    session: Session,
    incident_id: int,
    *,
    viewer: User | None,
    before: int | None = None,
    limit: int | None = None,
) -> list[Update]:
    """Newest first. The public sees published and retracted updates; volunteers also their
    own proposals; officers everything. ``before``/``limit``: one page (``broadcast.paging``),
    counted among the updates the viewer may see."""
    query = select(Update).where(Update.incident_id == incident_id, col(Update.public))
    query = paging.keyset(query, Update.id, before=before, limit=limit)
    if viewer is None or viewer.role not in (Role.officer, Role.admin):
        query = query.where(_seen_by(viewer))
    return [u for u in session.exec(query) if visible_to(u, viewer)]


def published_public(*, with_retracted: bool = False) -> Select[Update, Incident]:
    """The query for what everyone may see: published public updates (and retracted ones where
    asked) with their incident, newest first. Callers narrow it with ``where`` and ``limit``."""
    states = [UpdateState.published] + ([UpdateState.retracted] if with_retracted else [])
    return (
        select(Update, Incident)
        .join(Incident, col(Incident.id) == col(Update.incident_id))
        .where(col(Update.public), col(Update.state).in_(states))
        .order_by(col(Update.published_at).desc(), col(Update.id).desc())
    )


def _seen_by(viewer: User | None) -> ColumnElement[bool]:
    """``visible_to`` of a public update as SQL, for a viewer who is not an officer."""
    seen = col(Update.state).in_([UpdateState.published, UpdateState.retracted])
    return or_(seen, Update.author_id == viewer.id) if viewer is not None else seen


def visible_to(update: Update, viewer: User | None) -> bool:
    if not update.public:  # a private answer to one resident: officers only
        return viewer is not None and viewer.role in (Role.officer, Role.admin)
    if update.state in (UpdateState.published, UpdateState.retracted):
        return True
    if viewer is None:
        return False
    return viewer.role != Role.volunteer or update.author_id == viewer.id


def post(
    session: Session,
    incident: Incident,
    *,
    author: User | None,
    body: str | dict,
    channels: ChannelSet,
    severity: str | None = None,
    areas_: list[str] | None = None,
    channel_names: list[str] | None = None,
    publish_at: datetime | None = None,
    next_update_due: datetime | None = None,
    kind: UpdateKind = UpdateKind.update,
    source: Source | None = None,
    credit: str | None = None,
    draft: bool = False,
) -> Update:
    """A new update on the timeline: published now, scheduled, a draft, or (from a volunteer)
    waiting for an officer's approval."""
    if incident.status == IncidentStatus.resolved:
        raise Conflict(_("the incident is resolved; open a new one"))
    update = Update(
        incident_id=incident.id,
        kind=kind,
        state=UpdateState.draft,
        body=_check_body(body),
        severity=Severity(severity or incident.severity),
        areas=areas.check_codes(session, areas_ if areas_ is not None else incident.areas),
        channels=_check_channels(channel_names, channels),
        publish_at=_check_aware(publish_at, "publish_at"),
        next_update_due=_check_aware(next_update_due, "next_update_due"),
        author_id=author.id if author else None,
        source=source or _source_of(author),
        credit=credit or _credit_of(author),
    )
    session.add(update)
    session.flush()
    actor = author.name if author else update.source.value
    audit.record(
        session,
        actor=actor,
        actor_id=update.author_id,
        action="update.post",
        subject=f"update:{update.id}",
        incident=incident.id,
    )
    if author is not None and author.role == Role.volunteer:  # draft or not: an officer decides
        update.state = UpdateState.pending_approval
        emit(session, "proposed", update_id=update.id, incident_id=incident.id)
        return update
    if draft:
        return update
    return release(session, update, incident, channels=channels, actor=actor)


def release(
    session: Session, update: Update, incident: Incident, *, channels: ChannelSet, actor: str
) -> Update:
    """Publish now, or schedule for ``publish_at``; never with a template's blank unfilled."""
    check_filled(update.body)
    if update.publish_at is not None and update.publish_at > utcnow() + SCHEDULE_SLACK:
        update.state = UpdateState.scheduled
        audit.record(
            session,
            actor=actor,
            action="update.schedule",
            subject=f"update:{update.id}",
            publish_at=update.publish_at.isoformat(),
        )
        emit(session, "scheduled", update_id=update.id)
        return update
    return publish(session, update, incident, channels=channels, actor=actor)


def publish(
    session: Session, update: Update, incident: Incident, *, channels: ChannelSet, actor: str
) -> Update:
    if update.state in (UpdateState.published, UpdateState.retracted, UpdateState.rejected):
        raise Conflict(
            _("update %(id)s is %(state)s and cannot be published"),
            id=update.id,
            state=str(update.state),
        )
    if incident.status == IncidentStatus.resolved and update.kind != UpdateKind.all_clear:
        raise Conflict(_("the incident is resolved; nothing more is published on it"))
    now = utcnow()
    update.state, update.published_at = UpdateState.published, now
    if _keeps_promise(update):
        incident.next_update_due = update.next_update_due
    if Severity(update.severity).rank > Severity(incident.severity).rank:
        incident.severity = update.severity
    session.add_all([update, incident])
    session.flush()
    queued = audience.expand(session, update, channels)
    audit.record(
        session,
        actor=actor,
        action="update.publish",
        subject=f"update:{update.id}",
        deliveries=queued,
    )
    emit(session, "published", update_id=update.id, incident_id=incident.id, slug=incident.slug)
    return update


def approve(session: Session, update: Update, *, officer: User, channels: ChannelSet) -> Update:
    _expect(update, UpdateState.pending_approval, UpdateState.draft)
    update.decided_by = officer.id
    incident = _incident(session, update)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="update.approve",
        subject=f"update:{update.id}",
    )
    return release(session, update, incident, channels=channels, actor=officer.name)


def reject(session: Session, update: Update, *, officer: User, reason: str | None) -> Update:
    _expect(update, UpdateState.pending_approval, UpdateState.draft, UpdateState.scheduled)
    update.state, update.reason, update.decided_by = UpdateState.rejected, reason, officer.id
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="update.reject",
        subject=f"update:{update.id}",
        reason=reason,
    )
    return update


def correct(
    session: Session,
    update: Update,
    *,
    officer: User,
    body: str | dict,
    channels: ChannelSet,
    next_update_due: datetime | None = None,
) -> Update:
    """A correction is a new update pointing at the original; both stay visible."""
    return _supersede(
        session,
        update,
        officer=officer,
        body=body,
        channels=channels,
        kind=UpdateKind.correction,
        next_update_due=next_update_due,
    )


def retract(
    session: Session, update: Update, *, officer: User, reason: str, channels: ChannelSet
) -> Update:
    """The original is marked retracted (with the reason, still readable) and a short notice
    follows it to everyone who received it."""
    if not reason.strip():
        raise Invalid(_("a retraction needs a reason"))
    notice = _supersede(
        session, update, officer=officer, body=reason, channels=channels, kind=UpdateKind.retraction
    )
    update.state, update.reason = UpdateState.retracted, reason.strip()
    session.add(update)
    return notice


def _supersede(
    session: Session,
    update: Update,
    *,
    officer: User,
    body: str | dict,
    channels: ChannelSet,
    kind: UpdateKind,
    next_update_due: datetime | None = None,
) -> Update:
    _expect(update, UpdateState.published)
    check_filled(_check_body(body))
    if update.superseded_by_id is not None:
        raise Conflict(
            _("update %(id)s was already superseded by %(newer)s; correct that one"),
            id=update.id,
            newer=update.superseded_by_id,
        )
    incident = _incident(session, update)
    follow_up = Update(
        incident_id=update.incident_id,
        kind=kind,
        state=UpdateState.draft,
        body=_check_body(body),
        severity=update.severity,
        areas=update.areas,
        channels=update.channels,
        supersedes_id=update.id,
        author_id=officer.id,
        source=Source.officer,
        next_update_due=_check_aware(next_update_due) or incident.next_update_due,
    )
    session.add(follow_up)
    session.flush()
    update.superseded_by_id = follow_up.id
    session.add(update)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action=f"update.{kind}",
        subject=f"update:{update.id}",
        by=follow_up.id,
    )
    return publish(session, follow_up, incident, channels=channels, actor=officer.name)


def withdraw_unpublished(session: Session, incident_id: int, *, officer: User) -> list[int]:
    """At the all-clear, drafts, proposals and scheduled updates can no longer go out."""
    waiting = (UpdateState.draft, UpdateState.pending_approval, UpdateState.scheduled)
    updates = session.exec(
        select(Update).where(Update.incident_id == incident_id, col(Update.state).in_(waiting))
    ).all()
    for update in updates:
        update.state, update.reason = UpdateState.rejected, "incident resolved"
        update.decided_by = officer.id
        session.add(update)
    return [stored_id(u) for u in updates]


def publish_due(
    session: Session, *, channels: ChannelSet, now: datetime | None = None
) -> list[int]:
    """Publish every scheduled update whose time has come (the scheduler's job, and a safety net
    at start-up for jobs that were due while the service was down)."""
    now = now or utcnow()
    due = session.exec(
        select(Update).where(
            Update.state == UpdateState.scheduled, col(Update.publish_at) <= now + SCHEDULE_SLACK
        )
    ).all()
    for update in due:
        publish(session, update, _incident(session, update), channels=channels, actor="scheduler")
    return [stored_id(u) for u in due]


def _keeps_promise(update: Update) -> bool:
    """Whether publishing ``update`` sets the incident's promise of a next update. An officer's
    own update keeps the promise it makes (or, making none, clears it); a Q&A answer, an approved
    volunteer's proposal or a feed's draft says nothing about the next update and leaves the
    promise as it is, unless it states one."""
    if update.kind == UpdateKind.answer:
        return False
    return update.source == Source.officer or update.next_update_due is not None


def _incident(session: Session, update: Update) -> Incident:
    incident = session.get(Incident, update.incident_id) if update.incident_id else None
    if incident is None:
        raise NotFound(_("update %(id)s has no incident"), id=update.id)
    return incident


def _expect(update: Update, *states: UpdateState) -> None:
    if update.state not in states:
        raise Conflict(
            _("update %(id)s is %(state)s; this needs %(allowed)s"),
            id=update.id,
            state=str(update.state),
            allowed=" or ".join(states),
        )


def _check_body(body: str | dict) -> dict[str, str]:
    bodies = as_bodies(body)
    if not bodies:
        raise Invalid(_("the body must not be empty"))
    if unknown := set(bodies) - set(LANGUAGES):
        raise Invalid(
            _("unsupported language(s): %(languages)s; use nl or en"),
            languages=", ".join(sorted(unknown)),
        )
    if too_long := [lang for lang, text in bodies.items() if len(text) > MAX_BODY_CHARS]:
        raise Invalid(
            _("body too long in %(languages)s: at most %(most)s characters"),
            languages=", ".join(too_long),
            most=MAX_BODY_CHARS,
        )
    return bodies


def _check_channels(names: list[str] | None, channels: ChannelSet) -> list[str] | None:
    if names is None:
        return None
    unknown = [n for n in names if n not in channels and n not in channels.disabled]
    if unknown:
        raise Invalid(_("unknown channel(s): %(channels)s"), channels=", ".join(unknown))
    return list(dict.fromkeys(names))


def _check_aware(moment: datetime | None, name: str = "next_update_due") -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise Invalid(_("%(name)s needs a time zone, e.g. 2026-11-23T18:00:00+01:00"), name=name)
    return moment


def _source_of(author: User | None) -> Source:
    if author is None:
        return Source.feed
    return Source.volunteer if author.role == Role.volunteer else Source.officer


def _credit_of(author: User | None) -> str | None:
    return author.credit_name if author is not None and author.role == Role.volunteer else None


def resend_failed(session: Session, update: Update, officer: User) -> int:
    """Queue the failed and dead deliveries of ``update`` again; returns how many."""
    count = queue.requeue_failed(session, stored_id(update))
    emit(session, "requeued", update_id=update.id)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="update.resend_failed",
        subject=f"update:{update.id}",
        requeued=count,
    )
    return count
