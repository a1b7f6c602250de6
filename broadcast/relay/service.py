"""The relay kit of a published update, and the record of who relayed it where."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.areas import service as areas
from broadcast.auth.models import User
from broadcast.common import stored_id, utcnow
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.fanout.views import view_of
from broadcast.i18n import _
from broadcast.incidents.models import Incident
from broadcast.relay import kit
from broadcast.relay.models import Relay
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateState

NOT_PUBLISHED = _("update %(id)s is %(state)s; only published updates are relayed")


def _visible(session: Session, update_id: int, viewer: User) -> Update:
    update = timeline.get(session, update_id)
    if not timeline.visible_to(update, viewer):
        raise NotFound(_("update %(id)s not found"), id=update_id)
    return update


def relayable(session: Session, update_id: int, viewer: User) -> Update:
    """The update, when it may be forwarded: published, public, and not corrected since."""
    update = _visible(session, update_id, viewer)
    if not update.public:
        raise Conflict(_("update %(id)s is a private answer; it is not for relaying"), id=update_id)
    if update.state != UpdateState.published:
        raise Conflict(NOT_PUBLISHED, id=update_id, state=str(update.state))
    if update.superseded_by_id is not None:
        raise Conflict(
            _("update %(id)s was corrected by update %(newer)s; relay the correction instead"),
            id=update_id,
            newer=update.superseded_by_id,
        )
    return update


def kit_for(
    session: Session, update_id: int, *, viewer: User, language: str, public_url: str
) -> list[kit.KitText]:
    update = relayable(session, update_id, viewer)
    incident = session.get(Incident, update.incident_id) if update.incident_id else None
    corrects = session.get(Update, update.supersedes_id) if update.supersedes_id else None
    return kit.build(
        view_of(update, incident, public_url),
        language,
        corrects_published_at=corrects.published_at if corrects else None,
        now=utcnow(),
    )


def record(
    session: Session,
    update_id: int,
    *,
    user: User,
    format: str,
    place: str | None,
    area_codes: list[str],
) -> Relay:
    """A member forwarded the update. Also after a later correction (it was right to relay it
    then), but never an update that was not published."""
    update = _visible(session, update_id, user)
    if not update.public or update.state not in (UpdateState.published, UpdateState.retracted):
        raise Conflict(NOT_PUBLISHED, id=update_id, state=str(update.state))
    if format not in kit.FORMAT_KEYS:
        raise Invalid(
            _("unknown format %(format)s; use one of %(formats)s"),
            format=repr(format),
            formats=", ".join(kit.FORMAT_KEYS),
        )
    relay = Relay(
        update_id=update_id,
        user_id=stored_id(user),
        format=format,
        place=(place or "").strip() or None,
        areas=areas.check_codes(session, area_codes),
    )
    session.add(relay)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        actor_id=user.id,
        action="update.relayed",
        subject=f"update:{update_id}",
        relay=relay.id,
        format=format,
        areas=relay.areas,
    )
    return relay


def relays_of(session: Session, update_id: int) -> list[tuple[Relay, User]]:
    timeline.get(session, update_id)
    rows = session.exec(
        select(Relay, User)
        .join(User, col(User.id) == Relay.user_id)
        .where(Relay.update_id == update_id)
        .order_by(col(Relay.at), col(Relay.id))
    ).all()
    return list(rows)


def counts(relays: list[Relay]) -> tuple[dict[str, int], dict[str, int], int]:
    """Relays per area code and per format; and how many named no area."""
    by_area = Counter(code for relay in relays for code in relay.areas)
    by_format = Counter(relay.format for relay in relays)
    return dict(sorted(by_area.items())), dict(by_format), sum(1 for r in relays if not r.areas)
