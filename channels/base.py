"""The channel adapter interface: plain data in, a receipt or a classified error out.

An adapter knows this module, ``channels.errors``, ``channels.text``, the standard library and its
provider's client library; never ``broadcast``. Everything it is handed is plain frozen data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from fastapi import APIRouter

SEVERITIES = ("info", "advisory", "warning", "emergency")
LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"


@dataclass(frozen=True)
class Limits:
    """What the provider allows, declared as data and enforced by the core's pacer."""

    max_chars: int | None = None
    per_second: float | None = None  # overall sends per second; None = unlimited
    per_target_interval: float = 0.0  # minimum seconds between two sends to one target
    concurrency: int = 8  # sends in flight at once
    media: bool = False


@dataclass(frozen=True)
class Capabilities:
    one_to_many: bool = False  # has broadcast targets (a channel, an account, configured URLs)
    per_subscriber: bool = False  # residents subscribe with an address on this channel
    can_edit: bool = False  # a correction can edit the original message
    status_callbacks: bool = False  # the provider reports delivered/failed later
    inbound: bool = False  # residents can write back
    # The broadcast targets are the service's own public pages, where an exercise is shown with
    # its mark; other one-to-many targets (a public channel, an account, partner URLs) are a
    # real audience an exercise reaches only when an officer widened it.
    own_site: bool = False


@dataclass(frozen=True)
class Measurement:
    """How long a text is in the unit the channel's limit counts (what the console shows)."""

    length: int
    limit: int | None  # None: the channel states no limit
    unit: str = "chars"  # or "segments" (SMS)
    encoding: str | None = None  # "GSM-7" or "UCS-2" for SMS


SIGNUP_BY_CODE = "code"  # residents sign up on the web with their address and a code sent to it


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str
    alt: str = ""


@dataclass(frozen=True)
class UpdateView:
    """One published update as adapters see it."""

    id: int
    kind: str  # update, correction, retraction, all_clear, answer
    severity: str
    body: dict[str, str]  # language -> text
    url: str  # the full update on the public site
    incident_title: str = ""
    incident_slug: str = ""
    published_at: datetime | None = None
    next_update_due: datetime | None = None
    areas: tuple[str, ...] = ()
    credit: str | None = None  # the volunteer or resident to thank by name
    supersedes: int | None = None
    media: tuple[Media, ...] = ()
    exercise: bool = False
    # The incident's pinned instruction ("Wat moet u nu doen") per language, where there is one
    # (the bot's /status answer shows it); empty otherwise.
    instruction: dict[str, str] = field(default_factory=dict)

    def text(self, language: str) -> str:
        """The body in ``language``, falling back to Dutch, then to any language there is."""
        return (
            self.body.get(language)
            or self.body.get(DEFAULT_LANGUAGE)
            or next(iter(self.body.values()), "")
        )


@dataclass(frozen=True)
class Message:
    """An update rendered for one channel and one language."""

    update_id: int | None  # None for a direct message (a reply, a sign-up code)
    language: str
    text: str
    parts: int = 1  # SMS segments
    shortened: bool = False  # cut to fit, with a link to the full update
    data: dict[str, Any] = field(default_factory=dict)  # structured payload (webhook JSON)
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where one delivery goes."""

    address: str  # chat id, E.164 number, URL, account handle
    delivery_id: int
    per_subscriber: bool = True
    original_message_id: str | None = None  # provider id of the superseded update's message here
    attempt: int = 1  # 2 and up: an earlier attempt of this delivery failed


@dataclass(frozen=True)
class Receipt:
    provider_id: str | None = None
    delivered: bool = False  # final: no status callback will follow


InboundProcessor = Callable[[str, dict[str, Any]], Awaitable[None]]  # (key, payload)


class InboundHooks(Protocol):
    """What the core offers to an adapter's inbound router. All calls commit on their own.

    Inbound requests are stored before they are acknowledged: ``receive_inbound``, then the
    provider's 2xx, then processing, then ``inbound_done``. What a crash left unprocessed the
    core hands back to the processor registered with ``on_inbound``."""

    async def receive_inbound(
        self, *, channel: str, key: str, payload: dict[str, Any], sender: str | None = None
    ) -> bool:
        """Store a provider request durably, keyed by the provider's id for it (``key``), and
        claim it for processing. False: that key came before (a resend or a replay) and must
        not be acted on again. ``sender`` (the address) lets erasing a person find it."""
        ...

    async def inbound_done(self, *, channel: str, key: str) -> None:
        """The request is processed: its payload is deleted, the key kept to refuse replays."""
        ...

    def on_inbound(self, channel: str, process: InboundProcessor) -> None:
        """How to process a stored request of ``channel`` whose process died before it was
        done. The core calls it (from any process) and then ``inbound_done``; raising leaves
        the request for a later attempt. It may run twice for one request after a crash:
        the core keeps a question to one per ``inbound_key``."""
        ...

    async def question(
        self,
        *,
        channel: str,
        address: str,
        text: str,
        language: str | None = None,
        reply_to: str | None = None,
        inbound_key: str | None = None,
    ) -> int:
        """Put a message in the inbox. With ``inbound_key`` (the stored request it came in),
        the request is marked done with it, and a second call makes no second question."""
        ...

    async def subscribe(
        self,
        *,
        channel: str,
        address: str,
        areas: list[str] | None = None,
        postcode: str | None = None,
        language: str | None = None,
    ) -> int:
        """Subscribe (or re-subscribe, with new areas and language) a resident; returns the
        subscriber id. Raises ``channels.errors.UnknownArea`` for a postcode or area that is
        not in the municipality, ``InvalidInput`` for an address the core refuses and
        ``AlreadySubscribed`` when it refuses a second subscription of the address."""
        ...

    async def unsubscribe(self, *, channel: str, address: str) -> bool: ...

    async def link_officer(self, *, channel: str, address: str, code: str) -> bool:
        """An officer's own chat (``address``) sends the one-time code the console showed:
        reminders for the officer on duty go to this chat from now on. False: a wrong or
        expired code."""
        ...

    async def delivery_status(
        self,
        *,
        channel: str,
        provider_id: str,
        status: str,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        """A provider's final status for a sent message. ``retry_after``: it failed for a
        passing reason; send it again after that many seconds if it has attempts left."""

    async def latest(self, language: str) -> list[UpdateView]: ...

    async def reply(
        self,
        *,
        channel: str,
        address: str,
        text: str,
        data: dict[str, Any] | None = None,
        language: str | None = None,
        ttl_seconds: float | None = None,
    ) -> int:
        """Queue a direct message to one person (the bot's answer to a command, a code) as a
        delivery of ``channel``: it goes out through the outbox like an update, paced and
        retried by the core, and comes back to the adapter's ``send`` as a ``Message`` with
        ``update_id=None``, this ``text`` (final: already escaped for the channel) and
        ``data``. Not sent once ``ttl_seconds`` have passed. Returns the direct message id."""
        ...


class LinkSigner(Protocol):
    """Signs a value (an address) into a token for a link residents follow without logging in
    (unsubscribe, manage), with the installation's key; only the core holds the key."""

    def sign(self, purpose: str, value: str) -> str: ...

    def unsign(self, purpose: str, token: str) -> str | None:
        """The value, or None for a token that was not signed for ``purpose`` here."""
        ...


@dataclass(frozen=True)
class ChannelContext:
    """What every adapter is handed at construction."""

    public_url: str
    hooks: InboundHooks | None = None
    announce: Callable[[UpdateView], Awaitable[None]] | None = None  # used by `platform`
    signer: LinkSigner | None = None


class ChannelSettings(BaseModel):
    """Base of an adapter's own settings, filled from TOML and ``BROADCAST_<PREFIX>_*``."""

    model_config = ConfigDict(extra="ignore")
    # field -> the whole environment variable, where the contract names one that does not
    # follow ``BROADCAST_<PREFIX>_<FIELD>`` (``BROADCAST_MAIL_FROM``, ``BROADCAST_VAPID_*``)
    env_names: ClassVar[dict[str, str]] = {}


class Channel(ABC):
    """One channel adapter. Subclasses declare their name, limits and settings as class data."""

    name: ClassVar[str]
    settings_prefix: ClassVar[str | None] = None  # env prefix when it differs from the name
    limits: Limits = Limits()  # an adapter may set its own from its settings
    capabilities: ClassVar[Capabilities] = Capabilities()
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    previewed: ClassVar[bool] = False  # the console's compose form shows how residents see it
    self_signup: ClassVar[str | None] = None  # SIGNUP_BY_CODE: the web sign-up form uses it
    title: ClassVar[str] = ""  # the name residents know it by ("Telegram"); else ``name``

    def __init__(self, settings: ChannelSettings, context: ChannelContext):
        """Raise ``NotConfigured`` when the settings do not allow the channel to run."""
        self.settings = settings
        self.context = context

    def broadcast_targets(self) -> list[str]:
        """Addresses every published update goes to once (one-to-many channels)."""
        return []

    def normalize_address(self, address: str) -> str:
        """Check and canonicalise a subscriber address; raise ``ValueError`` with a reason."""
        return address.strip()

    def subscribe_link(self, postcode: str | None = None) -> str | None:
        """A link that subscribes a resident here (for the area of ``postcode`` when given), for
        the public sign-up page and posters; None where residents subscribe another way."""
        return None

    def text_to_subscribe(self) -> tuple[str, str] | None:
        """The keyword and the number residents text to subscribe here (for posters), or None
        where residents cannot subscribe by sending a text."""
        return None

    @classmethod
    def preview_renderer(cls) -> Channel:
        """An instance with the default settings that renders, measures and gives plain text,
        but is not set up to send: how the console previews a channel that is off. Override
        when ``render`` needs more than ``settings`` and ``limits``."""
        renderer = cls.__new__(cls)
        Channel.__init__(renderer, cls.Settings(), ChannelContext(public_url=""))
        return renderer

    @abstractmethod
    def render(self, update: UpdateView, language: str) -> Message:
        """Fit the update to the channel. Pure: no I/O."""

    def plain_text(self, message: Message) -> str:
        """The rendered message as residents read it, without markup."""
        return message.text

    def measure(self, text: str) -> Measurement:
        """The length of plain ``text`` against the channel's limit. By default in UTF-16 code
        units, as Telegram and most JSON APIs count."""
        return Measurement(len(text.encode("utf-16-le")) // 2, self.limits.max_chars)

    @abstractmethod
    async def send(self, message: Message, target: Target) -> Receipt:
        """One provider call. Never retries, never sleeps; raises a ``channels.errors`` error."""

    def router(self) -> APIRouter | None:
        """Inbound webhooks (bot commands, replies, status callbacks), mounted by the core."""
        return None

    async def start(self) -> None:
        """Open connections; called once the application runs."""

    async def close(self) -> None:
        """Release connections."""
