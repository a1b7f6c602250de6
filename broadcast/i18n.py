"""Dutch first, English available: the ``_`` marker, the labels of stored values and the
gettext catalogues, for every layer (no web framework here).

The message ids are English (the language of the code); ``web/locale/nl/LC_MESSAGES/messages.po``
holds the Dutch. Catalogues are compiled in memory on first use, so there is no build step and
no ``.mo`` file to forget. ``broadcast.web.i18n`` adds the language of a request; ``docs/i18n.md``
shows how to extract new strings and update the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from channels.base import DEFAULT_LANGUAGE, LANGUAGES

DEFAULT = DEFAULT_LANGUAGE
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The catalogue lives next to the templates, which use it most.
LOCALE_DIR = Path(__file__).parent / "web" / "locale"
DOMAIN = "messages"


def _(message: str) -> str:
    """Marks a message for extraction where it is defined; translated where it is shown."""
    return message


# Labels of stored values, written out so that extraction finds them.
SEVERITY = {
    "info": _("Information"),
    "advisory": _("Advisory"),
    "warning": _("Warning"),
    "emergency": _("Emergency"),
}
KIND = {
    "update": "",
    "correction": _("Correction"),
    "retraction": _("Retraction"),
    "all_clear": _("All clear"),
    "answer": _("Questions and answers"),
}
STATUS = {
    "active": _("Active"),
    "monitoring": _("Monitoring"),
    "resolved": _("Resolved"),
}
STATE = {
    "draft": _("Draft"),
    "pending_approval": _("Waiting for approval"),
    "scheduled": _("Scheduled"),
    "published": _("Published"),
    "rejected": _("Rejected"),
    "retracted": _("Retracted"),
}

DELIVERY_STATE = {
    "pending": _("Waiting"),
    "sending": _("Sending"),
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "failed": _("Failed"),
    "dead": _("Given up"),
    "cancelled": _("Cancelled"),
}
# The audit log's action codes, as people say them.
ACTION = {
    "console.login": _("Signed in"),
    "console.login_failed": _("Failed sign-in"),
    "console.logout": _("Signed out"),
    "duty.note": _("Duty note written"),
    "duty.take_over": _("Duty taken over"),
    "feed.alert": _("Feed alert"),
    "feed.change": _("Feed changed"),
    "feed.create": _("Feed added"),
    "feed.delete": _("Feed removed"),
    "feed.disable": _("Feed switched off"),
    "feed.failing": _("Feed failing"),
    "feed.fire": _("Feed rule fired"),
    "feed.poll": _("Feed polled by hand"),
    "feed.incident": _("Incident opened by a feed"),
    "feed.recovered": _("Feed working again"),
    "incident.create": _("Incident created"),
    "incident.overdue": _("Promised update late"),
    "incident.reminder": _("Reminder of a promised update"),
    "incident.resolve": _("Incident resolved"),
    "instruction.change": _("Instruction changed"),
    "instruction.clear": _("Instruction cleared"),
    "instruction.pin": _("Instruction pinned"),
    "media.add": _("Photo or video added"),
    "officer.chat_link": _("Chat with the bot linked"),
    "officer.chat_unlink": _("Chat with the bot unlinked"),
    "media.remove": _("Photo or video removed"),
    "question.answer": _("Question answered"),
    "question.move": _("Question moved"),
    "question.receive": _("Question received"),
    "signup.code": _("Sign-up code sent"),
    "subscriber.erase": _("Subscriber erased"),
    "subscriber.moved": _("Subscriber moved"),
    "subscriber.gone": _("Subscriber unreachable (blocked, STOP or invalid)"),
    "subscriber.subscribe": _("Subscribed"),
    "subscriber.unsubscribe": _("Unsubscribed"),
    "update.approve": _("Update approved"),
    "update.post": _("Update posted"),
    "update.publish": _("Update published"),
    "update.reject": _("Update rejected"),
    "update.relayed": _("Update shared by a volunteer"),
    "update.resend_failed": _("Failed deliveries sent again"),
    "update.schedule": _("Update scheduled"),
    "update.withdraw": _("Update withdrawn"),
    "update.correction": _("Update corrected"),
    "update.retraction": _("Update retracted"),
    "update.all_clear": _("All-clear published"),
    "template.save": _("Message template saved"),
    "template.delete": _("Message template deleted"),
    "user.add": _("User added"),
    "user.password": _("Password changed"),
    "user.role": _("Role changed"),
    "user.activate": _("User reactivated"),
    "user.deactivate": _("User deactivated"),
    "user.revoke_token": _("API token replaced"),
}
ROLE = {
    "admin": _("administrator"),
    "officer": _("communication adviser"),
    "volunteer": _("neighbourhood volunteer"),
}
# The kinds of audit subjects ("update:9"), and the console page of each where there is one.
SUBJECT = {
    "update": (_("Update %(id)s"), "/console/updates/%(id)s"),
    "incident": (_("Incident %(id)s"), "/console/incidents/%(id)s"),
    "question": (_("Question %(id)s"), "/console/questions?state=answered#question-%(id)s"),
    "subscriber": (_("Subscriber %(id)s"), None),
    "feed": (_("Feed %(id)s"), None),
    "signup": (_("Sign-up %(id)s"), None),
    "user": (_("User %(id)s"), "/console/users#user-%(id)s"),
    "duty": (_("Shift %(id)s"), "/console/duty"),
    "template": (_("Template %(id)s"), "/console/templates#template-%(id)s"),
}


@cache
def translations(language: str) -> NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():  # English: the message ids themselves
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


Gettext = Callable[..., str]


def supported(language: str | None) -> str:
    """The language itself where we speak it, else the default."""
    return language if language in LANGUAGES else DEFAULT


def translator(language: str) -> Gettext:
    """``_("Expected at %(time)s", time=...)``: translate, then fill in the named values."""
    translate = translations(supported(language)).gettext

    def _(message: str, **values: object) -> str:
        text = translate(message)
        return text % values if values else text

    return _


def subject_of(subject: str | None, translate: Gettext) -> tuple[str, str | None]:
    """An audit subject ("update:9") as the reader's words and the console page it is on."""
    kind, _sep, ident = (subject or "").partition(":")
    if kind not in SUBJECT or not ident.isdigit():
        return subject or "", None
    label, url = SUBJECT[kind]
    return translate(label, id=ident), url % {"id": ident} if url else None


def plural_translator(language: str) -> Callable[..., str]:
    """``ngettext("%(num)s question", "%(num)s questions", n)``: the form for ``n`` in the
    language (Dutch and English: one and other), with ``num`` and the named values filled in."""
    translate = translations(supported(language)).ngettext

    def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
        return translate(singular, plural, n) % ({"num": n} | values)

    return ngettext


def local_time(value: datetime | None, fmt: str = "%H:%M") -> str:
    return value.astimezone(AMSTERDAM).strftime(fmt) if value else ""


def moment(value: datetime | None, language: str, now: datetime | None = None) -> str:
    """ "14:05" today, "dinsdag 24 november 09:00" on any other day: a promise of an update
    at "09:00" must not be read as today when it means tomorrow."""
    if value is None:
        return ""
    today = (now or datetime.now(AMSTERDAM)).astimezone(AMSTERDAM).date()
    if value.astimezone(AMSTERDAM).date() == today:
        return local_time(value)
    return long_time(value, language)


def long_time(value: datetime | None, language: str) -> str:
    """ "maandag 23 november 14:05" in the reader's language, Amsterdam time."""
    if value is None:
        return ""
    return format_datetime(value, "EEEE d MMMM HH:mm", tzinfo=AMSTERDAM, locale=language)
