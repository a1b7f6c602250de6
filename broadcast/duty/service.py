"""Who is on duty, linking an officer's own chat with the bot, and reminding the officers on
duty of a promised update before it is late."""

from __future__ import annotations

import hashlib
import html
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.auth.models import Role, User
from broadcast.common import utcnow
from broadcast.db import emit
from broadcast.delivery import direct
from broadcast.duty.models import DutyShift, OfficerChat, PromiseReminder
from broadcast.errors import Conflict, Forbidden, Invalid
from broadcast.i18n import AMSTERDAM, _
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.settings import Settings

MAX_NOTE_CHARS = 2000
LINK_CODE_LIFETIME = timedelta(minutes=15)
LINK_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # nothing to mistake for another
LINK_CODE_LENGTH = 8
CHAT_CHANNEL = "telegram"
REMINDER_TTL_SECONDS = 3600.0  # a reminder later than an hour is no reminder
OFFICER_ROLES = (Role.officer, Role.admin)


# --- who is on duty ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    id: int
    officer: User
    note: str
    started_at: datetime


def on_duty(session: Session) -> Shift | None:
    """The newest take-over, or None when nobody ever took the duty."""
    shifts = history(session, limit=1)
    return shifts[0] if shifts else None


def history(session: Session, *, limit: int = 20) -> list[Shift]:
    """The take-overs, newest first."""
    rows = session.exec(
        select(DutyShift, User)
        .join(User, col(User.id) == DutyShift.officer_id)
        .order_by(col(DutyShift.started_at).desc(), col(DutyShift.id).desc())
        .limit(limit)
    )
    return [
        Shift(id=shift.id, officer=user, note=shift.note, started_at=shift.started_at)
        for shift, user in rows
        if shift.id is not None
    ]


def take_over(session: Session, officer: User, *, now: datetime | None = None) -> Shift:
    """``officer`` is on duty from now; the previous shift's hand-over note stays on the page."""
    _check_officer(officer)
    assert officer.id is not None  # a signed-in user is a stored row
    previous = on_duty(session)
    shift = DutyShift(officer_id=officer.id, started_at=now or utcnow())
    session.add(shift)
    session.flush()
    assert shift.id is not None  # flushed
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="duty.take_over",
        subject=f"duty:{shift.id}",
        previous=previous.officer.name if previous else None,
    )
    return Shift(id=shift.id, officer=officer, note="", started_at=shift.started_at)


def write_note(session: Session, officer: User, note: str) -> Shift:
    """The hand-over note of the shift on duty, for whoever takes over next: written (and
    rewritten) by the officer on duty alone. The only change a shift's row ever sees."""
    _check_officer(officer)
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise Invalid(_("the hand-over note is longer than %(max)s characters"), max=MAX_NOTE_CHARS)
    current = on_duty(session)
    if current is None or current.officer.id != officer.id:
        raise Conflict(_("only the adviser on duty writes the hand-over note; take over first"))
    row = session.get(DutyShift, current.id)
    assert row is not None  # just read
    row.note = note
    session.add(row)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="duty.note",
        subject=f"duty:{current.id}",
    )
    return Shift(id=current.id, officer=officer, note=note, started_at=current.started_at)


def _check_officer(officer: User) -> None:
    if officer.role not in OFFICER_ROLES or not officer.active:
        raise Forbidden(_("only communication advisers may do this"))


def reminder_recipients(session: Session) -> list[User]:
    """The officer on duty, or every active officer when nobody is (or that one left)."""
    shift = on_duty(session)
    if shift is not None and shift.officer.active and shift.officer.role in OFFICER_ROLES:
        return [shift.officer]
    query = select(User).where(col(User.active), col(User.role).in_(OFFICER_ROLES))
    return list(session.exec(query.order_by(col(User.id))))


# --- an officer's own chat with the bot ----------------------------------------------------


def chat_of(session: Session, user_id: int) -> OfficerChat | None:
    return session.get(OfficerChat, user_id)


def new_link_code(session: Session, officer: User, *, now: datetime | None = None) -> str:
    """A one-time code the officer sends to the bot (``/koppel CODE``); only its hash is kept."""
    if officer.role not in OFFICER_ROLES:
        raise Forbidden(_("only communication advisers may do this"))
    assert officer.id is not None  # a signed-in user is a stored row
    code = "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))
    chat = chat_of(session, officer.id) or OfficerChat(user_id=officer.id, channel=CHAT_CHANNEL)
    chat.code_hash = _code_hash(code)
    chat.code_expires_at = (now or utcnow()) + LINK_CODE_LIFETIME
    session.add(chat)
    return code


def link_chat(
    session: Session, *, channel: str, address: str, code: str, now: datetime | None = None
) -> User | None:
    """The officer whose valid code this is, now reached at ``address``; None for a wrong or
    expired code (the code is spent either way once it matched)."""
    wanted = _code_hash(code.strip().upper())
    chat = session.exec(select(OfficerChat).where(OfficerChat.code_hash == wanted)).first()
    if chat is None:
        return None
    expires = chat.code_expires_at
    chat.code_hash, chat.code_expires_at = None, None
    session.add(chat)
    if expires is None or expires < (now or utcnow()):
        return None
    user = session.get(User, chat.user_id)
    if user is None or not user.active:
        return None
    chat.channel, chat.address, chat.linked_at = channel, address, now or utcnow()
    audit.record(
        session,
        actor=user.name,
        actor_id=user.id,
        action="officer.chat_link",
        subject=f"user:{user.id}",
        channel=channel,
    )
    return user


def unlink_chat(session: Session, officer: User) -> None:
    assert officer.id is not None
    chat = chat_of(session, officer.id)
    if chat is not None:
        session.delete(chat)
        audit.record(
            session,
            actor=officer.name,
            actor_id=officer.id,
            action="officer.chat_unlink",
            subject=f"user:{officer.id}",
        )


def _code_hash(code: str) -> str:
    return hashlib.sha256(f"officer-link:{code}".encode()).hexdigest()


# --- the reminder before a promise is broken -----------------------------------------------


def promises_due_soon(session: Session, now: datetime, lead: timedelta) -> list[Incident]:
    """Open incidents whose promised update is due within ``lead`` and not yet late."""
    query = select(Incident).where(
        col(Incident.status) != IncidentStatus.resolved,
        col(Incident.next_update_due) > now,
        col(Incident.next_update_due) <= now + lead,
    )
    return list(session.exec(query.order_by(col(Incident.next_update_due))))


def due_soon(incidents: list[Incident], now: datetime, settings: Settings) -> list[Incident]:
    """Of these incidents, those whose promise is due within the reminder's lead time."""
    lead = timedelta(minutes=settings.promise_reminder_minutes)
    return [
        i
        for i in incidents
        if i.status != IncidentStatus.resolved
        and i.next_update_due is not None
        and now < i.next_update_due <= now + lead
    ]


def remind(
    session: Session, incident: Incident, *, public_url: str, chat_channels: set[str]
) -> list[int] | None:
    """Tell the officers on duty, once per promise: a console notice (the ``reminder`` event)
    and a message in their linked chat where its channel runs. Returns the user ids told, or
    None when this promise was reminded of before (by this or another process)."""
    assert incident.id is not None and incident.next_update_due is not None
    try:
        with session.begin_nested():
            session.add(PromiseReminder(incident_id=incident.id, due=incident.next_update_due))
    except IntegrityError:
        return None
    recipients = reminder_recipients(session)
    told = [user.id for user in recipients if user.id is not None]
    due = incident.next_update_due.isoformat()
    audit.record(
        session,
        actor="scheduler",
        action="incident.reminder",
        subject=f"incident:{incident.id}",
        due=due,
        officers=told,
    )
    emit(
        session,
        "reminder",
        incident_id=incident.id,
        title=incident.title,
        due=due,
        officers=told,
    )
    text = reminder_text(incident, public_url)
    for user_id in told:
        chat = chat_of(session, user_id)
        if chat is not None and chat.address and chat.channel in chat_channels:
            direct.queue(
                session,
                channel=chat.channel,
                address=chat.address,
                text=text,
                ttl_seconds=REMINDER_TTL_SECONDS,
            )
    return told


def reminder_text(incident: Incident, public_url: str) -> str:
    """The chat message (Telegram HTML): the incident alone, in Dutch and English."""
    assert incident.next_update_due is not None
    at = incident.next_update_due.astimezone(AMSTERDAM).strftime("%H:%M")
    title = html.escape(incident.title)
    link = html.escape(f"{public_url.rstrip('/')}/console/incidents/{incident.id}")
    return (
        f"⏰ <b>Volgend bericht beloofd om {at}</b>: {title}\n"
        f"<i>Next update promised at {at}</i>\n{link}"
    )
