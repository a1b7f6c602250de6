"""Web sign-up for SMS with double opt-in: a six-digit code by SMS, then the subscriber.

The channel is the running adapter that declares ``self_signup = SIGNUP_BY_CODE`` (``sms``).

Against SMS pumping (someone making the form text premium or foreign numbers at our cost):
numbers only from the allowed countries (default +31) and only mobile numbers, and at most so
many codes per number, per client and in total per hour. Codes are queued as direct messages
through the outbox, like the bot's replies (paced with everything else the account sends,
retried through an outage, never sent after they expired).

Nothing here logs or stores a phone number before the resident confirmed: the number and the
client address are kept as keyed hashes (HMAC-SHA-256 with the installation's secret key, see
``broadcast.keys``, or ``BROADCAST_SIGNUP_SECRET`` where that is set), the
code as a salted SHA-256. A six-digit code can be found from its hash by trying them all, so the
hash only keeps codes out of plain sight (backups, dumps); what protects them is the ten-minute
expiry and the five attempts. The code's text sits in the outbox until the SMS went out, then
it is erased.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlmodel import Session, col, delete, func, select

from broadcast import audit, keys
from broadcast.areas import service as areas
from broadcast.common import DEFAULT_LANGUAGE, Language, utcnow
from broadcast.delivery import direct
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import DomainError, Invalid, TooManyRequests, Unavailable
from broadcast.i18n import _
from broadcast.settings import Settings
from broadcast.signup.models import SmsSignup
from broadcast.subscribers import service as subscribers
from broadcast.subscribers.models import Subscriber
from channels.base import SIGNUP_BY_CODE

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
WINDOW = timedelta(hours=1)
DEFAULT_REGION = "NL"
# GSM-7 only, one segment with the longest municipality name we know of.
CODE_TEXT = {
    "nl": "Uw code voor de crisisberichten van {who}: {code}. 10 minuten geldig. "
    "Niet aangevraagd? Negeer dit bericht.",
    "en": "Your code for crisis updates from {who}: {code}. Valid for 10 minutes. "
    "Did not ask for it? Ignore this message.",
}
WELCOME_TEXT = {
    "nl": "U bent aangemeld voor de crisisberichten van {who}. Afmelden: stuur STOP.",
    "en": "You are subscribed to crisis updates from {who}. To stop, reply STOP.",
}


@dataclass(frozen=True)
class Confirmation:
    subscriber: Subscriber | None = None
    problem: DomainError | None = None  # answered without rolling back the attempt counted


def request_code(
    session: Session,
    *,
    settings: Settings,
    channels: ChannelSet,
    phone: str,
    client: str,
    postcode: str | None = None,
    area_codes: list[str] | None = None,
    language: Language = DEFAULT_LANGUAGE,
) -> SmsSignup:
    """Check the number and the limits, then queue a code by SMS."""
    channel = signup_channel(channels)
    number = allowed_number(settings, channels, channel, phone)
    codes = chosen_areas(session, postcode, area_codes)
    now = utcnow()
    session.exec(delete(SmsSignup).where(col(SmsSignup.created_at) < now - WINDOW))
    phone_key, client_key = keyed(session, settings, number), keyed(session, settings, client)
    check_limits(session, settings, phone_key=phone_key, client_key=client_key, now=now)
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(16)
    signup = SmsSignup(
        phone_key=phone_key,
        client_key=client_key,
        code_hash=code_hash(salt, code),
        salt=salt,
        areas=codes,
        language=language,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(signup)
    session.flush()
    text = CODE_TEXT[language].format(who=settings.municipality, code=code)
    direct.queue(
        session,
        channel=channel,
        address=number,
        text=text,
        language=language.value,
        ttl_seconds=CODE_TTL.total_seconds(),
    )
    audit.record(session, actor="resident:web", action="signup.code", subject=f"signup:{signup.id}")
    return signup


def confirm(
    session: Session, *, settings: Settings, channels: ChannelSet, phone: str, code: str
) -> Confirmation:
    """The subscriber, when the code is right. A wrong code counts (and must be committed)."""
    channel = signup_channel(channels)
    number = allowed_number(settings, channels, channel, phone)
    now = utcnow()
    pending = select(SmsSignup).where(
        SmsSignup.phone_key == keyed(session, settings, number),
        col(SmsSignup.confirmed_at).is_(None),
    )
    signup = session.exec(pending.order_by(col(SmsSignup.id).desc())).first()
    if signup is None or signup.expires_at <= now:
        return Confirmation(problem=Invalid(_("no valid code for this number: ask for a new one")))
    if signup.attempts >= MAX_ATTEMPTS:
        return Confirmation(problem=TooManyRequests(_("too many wrong codes: ask for a new one")))
    if not hmac.compare_digest(signup.code_hash, code_hash(signup.salt, code.strip())):
        signup.attempts += 1
        session.add(signup)
        left = MAX_ATTEMPTS - signup.attempts
        return Confirmation(problem=Invalid(_("wrong code (%(left)s attempts left)"), left=left))
    signup.confirmed_at = now
    session.add(signup)
    subscriber = subscribers.subscribe(
        session,
        channels=channels,
        channel=channel,
        address=number,
        area_codes=signup.areas,
        language=signup.language,
        confirmed=True,
        actor="resident:web",
        update_existing=True,
    )
    direct.queue(
        session,
        channel=channel,
        address=number,
        text=WELCOME_TEXT[signup.language].format(who=settings.municipality),
        language=signup.language.value,
        ttl_seconds=24 * 3600,
    )
    return Confirmation(subscriber=subscriber)


def allowed_number(settings: Settings, channels: ChannelSet, channel: str, phone: str) -> str:
    """E.164, from an allowed country, and one the SMS adapter accepts (a mobile number)."""
    try:
        parsed = phonenumbers.parse(phone.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise Invalid(_("this is not a phone number")) from None
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(_("this is not a valid phone number"))
    allowed = settings.signup_countries
    if allowed and str(parsed.country_code) not in allowed:
        countries = ", ".join(f"+{c}" for c in allowed)
        raise Invalid(_("only numbers from %(countries)s can sign up here"), countries=countries)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return subscribers.normalize(channels, channel, e164)


def chosen_areas(session: Session, postcode: str | None, codes: list[str] | None) -> list[str]:
    """A postcode (PC4, "6585" or "6585 AB") or area codes; neither: the whole municipality."""
    if postcode:
        area = areas.for_postcode(session, postcode)
        if area is None:
            raise Invalid(_("this postcode is not in the municipality"))
        return [area.code]
    return areas.check_codes(session, codes or [])


def check_limits(
    session: Session, settings: Settings, *, phone_key: str, client_key: str, now: datetime
) -> None:
    """At most so many codes per number, per client and in total in the last hour."""
    since = now - WINDOW
    limits = [
        (
            SmsSignup.phone_key == phone_key,
            settings.signup_codes_per_number,
            _("too many codes for this number: try again later"),
        ),
        (
            SmsSignup.client_key == client_key,
            settings.signup_codes_per_client,
            _("too many codes for this address: try again later"),
        ),
        (None, settings.signup_codes_per_hour, _("too many codes for sign-ups: try again later")),
    ]
    waits = []
    for condition, limit, refusal in limits:
        query = select(func.count(), func.min(SmsSignup.created_at)).where(
            col(SmsSignup.created_at) >= since
        )
        if condition is not None:
            query = query.where(condition)
        count, oldest = session.exec(query).one()
        if count >= limit:
            # Free again when enough of the counted codes are older than an hour.
            enough = _nth_oldest(session, since, condition, count - limit) or oldest
            waits.append((refusal, max(1, math.ceil((enough + WINDOW - now).total_seconds()))))
    if waits:
        refusal, seconds = max(waits, key=lambda w: w[1])
        raise TooManyRequests(refusal, retry_after=seconds)


def _nth_oldest(session: Session, since: datetime, condition, n: int) -> datetime | None:
    query = select(SmsSignup.created_at).where(col(SmsSignup.created_at) >= since)
    if condition is not None:
        query = query.where(condition)
    return session.exec(query.order_by(col(SmsSignup.created_at)).offset(n).limit(1)).first()


def available(settings: Settings, channels: ChannelSet) -> bool:
    return _code_channel(channels) is not None


def signup_channel(channels: ChannelSet) -> str:
    """The running channel that declares sign-up by code (SMS); ``Unavailable`` without one."""
    name = _code_channel(channels)
    if name is None:
        raise Unavailable(_("sign-up by SMS is not available"))
    return name


def _code_channel(channels: ChannelSet) -> str | None:
    declared = (name for name, a in channels.active.items() if a.self_signup == SIGNUP_BY_CODE)
    return next(declared, None)


def keyed(session: Session, settings: Settings, value: str) -> str:
    """A number or address as it is stored. ``BROADCAST_SIGNUP_SECRET`` (the key before there
    was an installation key) still wins where it is set, so that stored hashes stay valid."""
    if settings.signup_secret:
        return keys.digest(settings.signup_secret.get_secret_value().encode(), value)
    return keys.digest(keys.secret_key(session, settings), value)


def code_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()
