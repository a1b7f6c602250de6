"""E-mail: one message per update and subscriber, through SMTP with ``aiosmtplib``.

``BROADCAST_SMTP_URL`` (``smtp://[user:password@]host:port``; ``smtps://`` for implicit TLS,
STARTTLS whenever a plain server offers it) and ``BROADCAST_MAIL_FROM``; off without them.
Connections are kept open and reused for up to ``per_connection`` messages (many servers refuse
more per session), at most ``connections`` at once (``Limits.concurrency``).

Every update mail has a plain-text and an HTML part (``templates/``), the short link, the
next-update promise, the credit line, photos as links, ``Message-ID``, ``Date`` and a one-click
``List-Unsubscribe`` (RFC 8058). The ``Message-ID`` is the receipt's provider id, so a
correction, which the core sends to exactly the targets of the original, refers to it with
``In-Reply-To`` and ``References`` and mail clients thread the two.
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import Field

from channels.base import (
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSettings,
    Limits,
    Message,
    Receipt,
    Target,
    UpdateView,
)
from channels.email.classify import classify
from channels.errors import NotConfigured
from channels.text import next_update_line, subject_line, thanks_line

if TYPE_CHECKING:
    from fastapi import APIRouter

UNSUBSCRIBE = "email-unsubscribe"  # the signer's purpose for unsubscribe links
UNSUBSCRIBE_PATH = "/email/unsubscribe/"
# Stand-ins for the links of one recipient: ``render`` is per language, ``send`` per address.
UNSUBSCRIBE_MARK = "\x00unsubscribe\x00"
READ_MORE = {"nl": "Lees het hele bericht", "en": "Read the full update"}
PHOTOS = {"nl": "Foto's", "en": "Photos"}
WHY = {
    "nl": "U ontvangt dit bericht omdat u zich hebt aangemeld voor de crisisberichten.",
    "en": "You receive this message because you subscribed to the crisis updates.",
}
STOP = {"nl": "Afmelden", "en": "Unsubscribe"}
EMERGENCY = {"nl": "Bel bij levensgevaar 112.", "en": "In an emergency call 112."}
SCHEMES = {"smtp": 25, "smtps": 465}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


class EmailSettings(ChannelSettings):
    env_names: ClassVar[dict[str, str]] = {"mail_from": "BROADCAST_MAIL_FROM"}

    url: str | None = None  # BROADCAST_SMTP_URL
    mail_from: str | None = None  # BROADCAST_MAIL_FROM: "Gemeente <crisis@gemeente.nl>" or bare
    per_second: float = Field(10.0, gt=0)  # BROADCAST_SMTP_PER_SECOND
    per_connection: int = Field(100, ge=1)  # BROADCAST_SMTP_PER_CONNECTION: then reconnect
    connections: int = Field(4, ge=1, le=50)  # BROADCAST_SMTP_CONNECTIONS: open at once
    timeout_seconds: float = Field(10.0, gt=0)  # BROADCAST_SMTP_TIMEOUT_SECONDS
    validate_certs: bool = True  # BROADCAST_SMTP_VALIDATE_CERTS


class _Connection:
    def __init__(self, client: aiosmtplib.SMTP):
        self.client = client
        self.sent = 0


class EmailChannel(Channel):
    name = "email"
    settings_prefix = "SMTP"
    capabilities = Capabilities(per_subscriber=True)
    Settings = EmailSettings
    settings: EmailSettings
    title = "E-mail"
    previewed = True

    def __init__(self, settings: Any, context: ChannelContext):
        super().__init__(settings, context)
        if not (settings.url or "").strip() or not (settings.mail_from or "").strip():
            raise NotConfigured("BROADCAST_SMTP_URL and BROADCAST_MAIL_FROM are not set")
        parts = urlsplit(settings.url.strip())
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise NotConfigured("BROADCAST_SMTP_URL is not smtp://host:port or smtps://host:port")
        self.host = parts.hostname
        self.port = parts.port or SCHEMES[parts.scheme]
        self.implicit_tls = parts.scheme == "smtps"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = _address(settings.mail_from)
        self.domain = self.sender.domain or "localhost"
        self.limits = Limits(per_second=settings.per_second, concurrency=settings.connections)
        self._idle: list[_Connection] = []

    # --- addresses and messages -----------------------------------------------------------

    def normalize_address(self, address: str) -> str:
        value = address.strip()
        local, at, domain = value.rpartition("@")
        if (
            not at
            or not local
            or "." not in domain
            or len(value) > 254
            or any(c.isspace() or c in '<>,;"()[]\\' for c in value)
        ):
            raise ValueError("not an e-mail address")
        return f"{local}@{domain.lower()}"

    def render(self, update: UpdateView, language: str) -> Message:
        lang = language if language in READ_MORE else "nl"
        values = {
            "lang": lang,
            "subject": subject_line(update, lang),
            "body": update.text(lang).strip(),
            "url": update.url,
            "read_more": READ_MORE[lang],
            "credit": thanks_line(update.credit, lang) if update.credit else None,
            "next_update": (
                next_update_line(update.next_update_due, lang) if update.next_update_due else None
            ),
            "photos_label": PHOTOS[lang],
            "photos": [(m.url, m.alt) for m in update.media],
            "why": WHY[lang],
            "stop_label": STOP[lang],
            "unsubscribe_url": UNSUBSCRIBE_MARK,
            "emergency": EMERGENCY[lang],
            "exercise": update.exercise,
        }
        text = _templates.get_template("update.txt").render(values)
        html = _templates.get_template("update.html").render(values)
        return Message(
            update_id=update.id,
            language=lang,
            text=text,
            data={"subject": values["subject"], "html": html},
        )

    def plain_text(self, message: Message) -> str:
        return compose_plain_from(message)

    # --- sending --------------------------------------------------------------------------

    def unsubscribe_url(self, address: str) -> str | None:
        if self.context.signer is None:
            return None
        token = self.context.signer.sign(UNSUBSCRIBE, address)
        return self.context.public_url.rstrip("/") + UNSUBSCRIBE_PATH + token

    def compose(self, message: Message, target: Target) -> EmailMessage:
        """The MIME message for one recipient (public for the benchmark and the docs)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = target.address
        mail["Subject"] = message.data.get("subject") or ""
        mail["Date"] = format_datetime(datetime.now(UTC))
        kind = f"u{message.update_id}" if message.update_id is not None else "d"
        mail["Message-ID"] = f"<{kind}.{target.delivery_id}.{secrets.token_hex(8)}@{self.domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # no out-of-office replies, please
        if target.original_message_id:
            mail["In-Reply-To"] = target.original_message_id
            mail["References"] = target.original_message_id
        text, html = message.text, message.data.get("html")
        link = self.unsubscribe_url(target.address) if message.update_id is not None else None
        if link:
            mail["List-Unsubscribe"] = f"<{link}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = text.replace(UNSUBSCRIBE_MARK, link or "")
        mail.set_content(text)
        if html:
            mail.add_alternative(html.replace(UNSUBSCRIBE_MARK, link or ""), subtype="html")
        return mail

    async def send(self, message: Message, target: Target) -> Receipt:
        mail = self.compose(message, target)
        connection = await self._acquire()
        try:
            await connection.client.send_message(
                mail, sender=self.sender.addr_spec, recipients=[target.address]
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._discard(connection)
            raise classify(exc, per_subscriber=target.per_subscriber) from None
        except Exception:
            await self._discard(connection)
            raise
        connection.sent += 1
        await self._release(connection)
        return Receipt(provider_id=str(mail["Message-ID"]))

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected:
                return connection
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.implicit_tls,
            start_tls=None if not self.implicit_tls else False,  # None: when offered
            timeout=self.settings.timeout_seconds,
            validate_certs=self.settings.validate_certs,
            local_hostname=self.domain,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            with suppress(Exception):
                client.close()
            raise classify(exc) from None
        return _Connection(client)

    async def _release(self, connection: _Connection) -> None:
        if connection.sent >= self.settings.per_connection:
            await self._discard(connection, polite=True)
        else:
            self._idle.append(connection)

    async def _discard(self, connection: _Connection, *, polite: bool = False) -> None:
        if polite and connection.client.is_connected:
            with suppress(Exception):
                await connection.client.quit(timeout=self.settings.timeout_seconds)
        with suppress(Exception):
            connection.client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._discard(connection, polite=True)

    def router(self) -> APIRouter | None:
        if self.context.hooks is None or self.context.signer is None:
            return None
        from channels.email.links import links_router

        return links_router(self)


def _address(value: str) -> Address:
    """``BROADCAST_MAIL_FROM`` as an address: "Name <box@domain>" or "box@domain"."""
    text = value.strip()
    name = ""
    if text.endswith(">") and "<" in text:
        name, _, text = text[:-1].rpartition("<")
        name = name.strip().strip('"')
    box, at, domain = text.strip().rpartition("@")
    if not at or not box or not domain:
        raise NotConfigured("BROADCAST_MAIL_FROM is not an e-mail address")
    return Address(display_name=name, username=box, domain=domain)


def compose_plain_from(message: Message) -> str:
    """The text part as residents read it, without the per-recipient unsubscribe link."""
    return message.text.replace(UNSUBSCRIBE_MARK, "…")
