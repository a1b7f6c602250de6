"""Telegram through the Bot API: the municipality's channel (one-to-many) and private messages
to residents who subscribed by chat id. One ``telegram.Bot``, opened in ``start()``.

No PTB ``Application`` or ``AIORateLimiter``: the core's pacer spaces the sends, and every send
is one call that either returns a receipt or raises a classified error.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from typing import TYPE_CHECKING

from pydantic import SecretStr, field_validator
from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram import Message as TgMessage
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

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
from channels.errors import UNREADABLE_ANSWER, NotConfigured, unreadable_answer
from channels.telegram.classify import RecentChats, classify
from channels.telegram.render import MARKS, PARSE_MODE, mark_original, plain_text, render

if TYPE_CHECKING:
    from fastapi import APIRouter

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
_CHAT_ID = re.compile(r"-?\d{1,20}")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # a cached preview of the page goes stale


class TelegramSettings(ChannelSettings):
    bot_token: SecretStr | None = None
    channel_id: str | None = None  # "@gemeente" or "-100…": every update is posted there
    webhook_secret: SecretStr | None = None  # without it the webhook refuses everything
    api_url: str = "https://api.telegram.org"
    bot_username: str | None = None  # for t.me deep links
    register_webhook: bool = True  # setWebhook at start-up when the public URL is https
    timeout_seconds: float = 10.0

    @field_validator("channel_id", "bot_username", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class TelegramChannel(Channel):
    name = "telegram"
    # Telegram allows 30 messages per second overall and 1 per second per chat, counted where
    # they arrive. The pacer counts each send until its answer is in (see
    # broadcast.delivery.pacing), so requests that arrive late or out of order cannot put a
    # 31st (or a 2nd) into one second, and the published limits can be declared as they are.
    limits = Limits(
        max_chars=4096, per_second=30.0, per_target_interval=1.0, concurrency=8, media=True
    )
    capabilities = Capabilities(one_to_many=True, per_subscriber=True, can_edit=True, inbound=True)
    Settings = TelegramSettings
    previewed = True
    title = "Telegram"

    def __init__(self, settings: TelegramSettings, context: ChannelContext):
        super().__init__(settings, context)
        token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
        if not token:
            raise NotConfigured("BROADCAST_TELEGRAM_BOT_TOKEN is not set")
        self.settings: TelegramSettings = settings
        self._token = token
        self.channel_id = (
            self.normalize_address(settings.channel_id) if settings.channel_id else None
        )
        self.api_url = settings.api_url.rstrip("/")
        self._bot: Bot | None = None
        self.recent = RecentChats()  # tells a chat's own flood control from the bot's
        self._opening = asyncio.Lock()  # sends before start() must not open two bots

    # --- configuration ----------------------------------------------------------------------

    def broadcast_targets(self) -> list[str]:
        return [self.channel_id] if self.channel_id else []

    def normalize_address(self, address: str) -> str:
        address = address.strip()
        if _CHAT_ID.fullmatch(address):
            return str(int(address))
        if _USERNAME.fullmatch(address):
            return address
        raise ValueError("a Telegram address is a chat id (digits, may be negative) or @username")

    def secret_matches(self, presented: str | None) -> bool:
        """Constant-time check of the webhook header; no secret configured matches nothing."""
        secret = self.settings.webhook_secret
        expected = secret.get_secret_value() if secret else ""
        if not expected or presented is None:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())

    def subscribe_link(self, postcode: str | None = None) -> str | None:
        """``https://t.me/<bot>?start=<postcode>``: opening it subscribes, by postcode if given."""
        if not self.settings.bot_username:
            return None
        link = f"https://t.me/{self.settings.bot_username.lstrip('@')}"
        return f"{link}?start={postcode}" if postcode else link

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def bot(self) -> Bot | None:
        return self._bot

    async def start(self) -> None:
        await self.connect()
        if self.settings.register_webhook and self.context.public_url.startswith("https://"):
            await self._register_webhook()

    async def close(self) -> None:
        if self._bot is not None:
            bot, self._bot = self._bot, None
            await bot.shutdown()

    async def connect(self) -> Bot:
        """The one Bot of this channel, opened on first use if ``start()`` has not run yet."""
        if self._bot is not None:
            return self._bot
        async with self._opening:
            if self._bot is None:
                self._bot = await self._new_bot()
            return self._bot

    async def _new_bot(self) -> Bot:
        timeout = self.settings.timeout_seconds
        request = HTTPXRequest(
            connection_pool_size=2 * self.limits.concurrency,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=timeout,
            pool_timeout=timeout,
        )
        bot = Bot(self._token, base_url=f"{self.api_url}/bot", request=request)
        try:
            await bot.initialize()  # opens the connection pool, then getMe checks the token
        except (TelegramError, *UNREADABLE_ANSWER) as exc:
            # Telegram unreachable (or answering nonsense) at start-up must not stop the
            # service; sends classify it.
            # Only the class name: PTB's InvalidToken text contains the token.
            log.warning("Telegram getMe failed at start-up: %s", type(exc).__name__)
        return bot

    async def _register_webhook(self) -> None:
        secret = self.settings.webhook_secret
        if secret is None or self._bot is None:
            log.warning("Telegram webhook not registered: BROADCAST_TELEGRAM_WEBHOOK_SECRET unset")
            return
        url = self.context.public_url.rstrip("/") + WEBHOOK_PATH
        try:
            await self._bot.set_webhook(
                url, secret_token=secret.get_secret_value(), allowed_updates=ALLOWED_UPDATES
            )
        except TelegramError as exc:
            log.warning("Telegram setWebhook failed: %s", exc.message)

    # --- sending ----------------------------------------------------------------------------

    def render(self, update: UpdateView, language: str) -> Message:
        return render(update, language)

    def plain_text(self, message: Message) -> str:
        return plain_text(message.text)

    async def send(self, message: Message, target: Target) -> Receipt:
        bot = await self.connect()
        original = _message_id(target.original_message_id)
        try:
            sent = await _post(bot, message, target.address, original)
        except TelegramError as exc:
            raise classify(exc, target, recent=self.recent.recent(target.address)) from exc
        except UNREADABLE_ANSWER as exc:
            raise unreadable_answer("Telegram", exc) from exc
        self.recent.sent(target.address)
        if original is not None and not target.per_subscriber and message.data.get("kind") in MARKS:
            # Sent first, edited second: the reply carries the original's text, which the Bot
            # API offers nowhere else, and a failed edit can never hold the notice back.
            await self._mark(bot, sent, message, target.address)
        return Receipt(provider_id=f"{sent.chat_id}:{sent.message_id}", delivered=True)

    async def _mark(self, bot: Bot, sent: TgMessage, message: Message, chat: str) -> None:
        """Label the channel's original post as corrected/retracted. Best effort: "message is
        not modified" (already marked) or "message to edit not found" (deleted) are fine."""
        original = sent.reply_to_message
        if original is None:
            log.info("original of update %s is gone; not marked", message.update_id)
            return
        try:
            await _edit(bot, original, message, chat)
        except TelegramError as exc:
            log.warning("marking the original of update %s failed: %s", message.update_id, exc)
        except Exception:  # the notice is out: raising now would send it a second time
            log.exception("marking the original of update %s failed", message.update_id)

    def router(self) -> APIRouter | None:
        if self.context.hooks is None:
            return None
        from channels.telegram.inbound import inbound_router  # FastAPI only when inbound is used

        return inbound_router(self)


async def _edit(bot: Bot, original: TgMessage, message: Message, chat: str) -> None:
    kind, caption = str(message.data["kind"]), bool(original.photo)
    old = (original.caption if caption else original.text) or ""
    old_html = (original.caption_html if caption else original.text_html) if old else ""
    marked = mark_original(old, old_html, kind, message.language, caption=caption)
    message_id = original.message_id
    if caption:
        await bot.edit_message_caption(
            chat_id=chat, message_id=message_id, caption=marked, parse_mode=PARSE_MODE
        )
    else:
        await bot.edit_message_text(
            marked,
            chat_id=chat,
            message_id=message_id,
            parse_mode=PARSE_MODE,
            link_preview_options=_NO_PREVIEW,
        )


async def _post(bot: Bot, message: Message, chat: str, reply_to: int | None) -> TgMessage:
    # The original may have been deleted; the correction must go out all the same.
    reply = (
        ReplyParameters(reply_to, allow_sending_without_reply=True)
        if reply_to is not None
        else None
    )
    # Buttons of a direct message (the bot's welcome), kept as plain JSON in the outbox.
    markup = message.data.get("reply_markup")
    keyboard = InlineKeyboardMarkup.de_json(markup, bot) if markup else None
    if message.media:
        return await bot.send_photo(
            chat,
            message.media[0].url,
            caption=message.text,
            parse_mode=PARSE_MODE,
            reply_parameters=reply,
            reply_markup=keyboard,
        )
    return await bot.send_message(
        chat,
        message.text,
        parse_mode=PARSE_MODE,
        reply_parameters=reply,
        reply_markup=keyboard,
        link_preview_options=_NO_PREVIEW,
    )


def _message_id(provider_id: str | None) -> int | None:
    """The message id from our provider id ``"<chat_id>:<message_id>"``."""
    if not provider_id:
        return None
    _, _, tail = provider_id.rpartition(":")
    return int(tail) if tail.lstrip("-").isdigit() else None
