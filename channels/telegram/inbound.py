"""``POST /webhooks/telegram``: residents talking to the bot.

Every request must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to the configured secret
(none configured: everything is refused). Telegram never resends an update it got a 200 for, so
a valid update is stored durably (``InboundHooks.receive_inbound``, keyed by its ``update_id``)
before the 200, and handled after the response. An update id that came before (a resend, a
replay) is answered 200 and ignored; when the update cannot be stored the answer is 503 and
Telegram tries again. An update whose process died half-way is handed back by the core after a
restart (``on_inbound``). The core is reached only through ``InboundHooks``.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response
from telegram import Bot, CallbackQuery, ChatMemberUpdated, InlineKeyboardMarkup, Update, User
from telegram import Message as TgMessage
from telegram.error import TelegramError

from channels.errors import AlreadySubscribed, UnknownArea
from channels.telegram.channel import SECRET_HEADER, WEBHOOK_PATH
from channels.telegram.render import PARSE_MODE
from channels.telegram.replies import area_buttons, language_of, say
from channels.text import fit_telegram, telegram_escape

if TYPE_CHECKING:
    from channels.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)

POSTCODE = re.compile(r"(?P<pc4>[1-9]\d{3})(?:\s*[A-Za-z]{2})?")
COMMAND = re.compile(r"/(?P<name>[A-Za-z_]+)(?:@\w+)?(?:\s+(?P<rest>.*))?", re.DOTALL)
AREA_COMMANDS = frozenset({"gebied", "postcode", "area"})
LINK_COMMANDS = frozenset({"koppel", "link"})
GONE_STATUSES = frozenset({"kicked", "left"})  # a private chat's "kicked" = bot blocked
MEMORY = 10_000  # chats whose language choice is remembered (in this process)
STATUS_ITEMS = 5
REPLY_TTL = 15 * 60  # seconds: an answer to a command later than this would only confuse
REQUIRED_DEFAULTS: dict[str, dict[str, Any]] = {
    "from": {"is_bot": False},
    "user": {"is_bot": False},
    "callback_query": {"chat_instance": ""},
}


def inbound_router(channel: TelegramChannel) -> APIRouter:
    conversation = Conversation(channel)
    hooks = conversation.hooks
    hooks.on_inbound(channel.name, conversation.process)
    router = APIRouter(include_in_schema=False)

    @router.post(WEBHOOK_PATH)
    async def webhook(request: Request, background: BackgroundTasks) -> Response:
        if not channel.secret_matches(request.headers.get(SECRET_HEADER)):
            log.warning("rejected a Telegram webhook without the right secret token")
            raise HTTPException(403, "invalid secret token")
        try:
            data = await request.json()
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if type(update_id) is not int:
            raise HTTPException(400, "the body is not a Telegram update")
        key = str(update_id)
        try:
            new = await hooks.receive_inbound(
                channel=channel.name, key=key, payload=data, sender=sender_of(data)
            )
        except Exception:
            log.exception("storing a Telegram update failed; Telegram will send it again")
            raise HTTPException(503, "the update could not be stored; send it again") from None
        if new:
            background.add_task(conversation.handle, key, data)
        return Response(status_code=200)

    return router


class Conversation:
    """Turns one Telegram update into hook calls and a reply. Stateless across processes except
    for one hint: a resident's language button."""

    def __init__(self, channel: TelegramChannel):
        assert channel.context.hooks is not None
        self.channel, self.hooks = channel, channel.context.hooks
        self.name = channel.name
        self._languages: OrderedDict[int, str] = OrderedDict()

    @property
    def bot(self) -> Bot:
        assert self.channel.bot is not None
        return self.channel.bot

    async def handle(self, key: str, data: dict[str, Any]) -> None:
        """Right after the 200. What fails here is left stored, for the core to hand back."""
        try:
            await self.process(key, data)
            await self.hooks.inbound_done(channel=self.name, key=key)
        except Exception:  # a resident's message must never break the webhook
            log.exception("handling a Telegram update failed; it is tried again later")

    async def process(self, key: str, data: dict[str, Any]) -> None:
        """One stored update. Raises when the core could not take the resident's question."""
        await self.channel.connect()
        await self._route(key, Update.de_json(with_defaults(data), self.bot))

    async def _route(self, key: str, update: Update) -> None:
        if update.my_chat_member is not None:
            await self._membership(update.my_chat_member)
        elif update.callback_query is not None:
            await self._button(update.callback_query)
        elif update.message is not None and update.message.chat.type == "private":
            await self._message(key, update.message)

    # --- updates ----------------------------------------------------------------------------

    async def _membership(self, change: ChatMemberUpdated) -> None:
        if change.new_chat_member.status in GONE_STATUSES:
            await self.hooks.unsubscribe(channel=self.name, address=str(change.chat.id))

    async def _button(self, query: CallbackQuery) -> None:
        action, _, chosen = (query.data or "").partition(":")
        chat_id = query.message.chat.id if query.message else query.from_user.id
        language = language_of(chosen) if chosen else self._language(chat_id, query.from_user)
        if action == "lang":
            self._remember(chat_id, language)
            await self._answer(query, say("language_set", language))
            await self._say(chat_id, say("welcome", language), area_buttons(language))
        elif action == "all":
            await self._answer(query)
            await self._say(chat_id, await self._subscribe(chat_id, None, language))
        else:
            await self._answer(query, say("unknown_button", language))

    async def _message(self, key: str, message: TgMessage) -> None:
        chat_id = message.chat.id
        language = self._language(chat_id, message.from_user)
        text = (message.text or message.caption or "").strip()
        if command := COMMAND.fullmatch(text):
            await self._command(chat_id, command["name"].lower(), command["rest"] or "", language)
        elif match := POSTCODE.fullmatch(text):
            await self._say(chat_id, await self._subscribe(chat_id, match["pc4"], language))
        elif text:
            await self._question(key, message, text, language)
        else:  # a sticker, a voice note: nothing the inbox can show
            await self._say(chat_id, say("text_only", language))

    async def _command(self, chat_id: int, name: str, rest: str, language: str) -> None:
        postcode = POSTCODE.fullmatch(rest.strip())
        if name == "start" and postcode:  # deep link t.me/<bot>?start=6585
            await self._say(chat_id, await self._subscribe(chat_id, postcode["pc4"], language))
        elif name == "start":
            await self._say(chat_id, say("welcome", language), area_buttons(language))
        elif name in AREA_COMMANDS:
            reply = (
                await self._subscribe(chat_id, postcode["pc4"], language)
                if postcode
                else say("ask_postcode", language)
            )
            await self._say(chat_id, reply)
        elif name == "stop":
            stopped = await self.hooks.unsubscribe(channel=self.name, address=str(chat_id))
            await self._say(chat_id, say("stopped" if stopped else "not_subscribed", language))
        elif name == "status":
            await self._say(chat_id, await self._status(language))
        elif name in LINK_COMMANDS:  # an officer links this chat for reminders
            await self._say(chat_id, await self._link(chat_id, rest, language))
        else:  # /help and anything unknown
            await self._say(chat_id, say("help", language))

    # --- talking to the core ----------------------------------------------------------------

    async def _subscribe(self, chat_id: int, postcode: str | None, language: str) -> str:
        try:
            await self.hooks.subscribe(
                channel=self.name, address=str(chat_id), postcode=postcode, language=language
            )
        except AlreadySubscribed:
            return say("already", language)
        except UnknownArea:  # the postcode is the only area asked for
            return say("unknown_postcode", language, postcode=postcode or "")
        except Exception:
            log.exception("subscribing a Telegram resident failed")
            return say("sorry", language)
        if postcode:
            return say("subscribed", language, postcode=postcode)
        return say("subscribed_all", language)

    async def _link(self, chat_id: int, code: str, language: str) -> str:
        if not code.strip():
            return say("link_how", language)
        try:
            linked = await self.hooks.link_officer(
                channel=self.name, address=str(chat_id), code=code.strip()
            )
        except Exception:
            log.exception("linking an officer's chat failed")
            return say("sorry", language)
        return say("linked" if linked else "link_refused", language)

    async def _question(self, key: str, message: TgMessage, text: str, language: str) -> None:
        """A failure propagates: the update stays stored and is tried again, so the question
        is late rather than lost (and made once, by its ``inbound_key``)."""
        replied = message.reply_to_message
        await self.hooks.question(
            channel=self.name,
            address=str(message.chat.id),
            text=text,
            language=language,
            reply_to=f"{message.chat.id}:{replied.message_id}" if replied else None,
            inbound_key=key,
        )
        await self._say(message.chat.id, say("thanks", language))

    async def _status(self, language: str) -> str:
        try:
            views = await self.hooks.latest(language)
        except Exception:
            log.exception("reading the latest updates failed")
            return say("sorry", language)
        if not views:
            return say("status_none", language)
        items = [say("status_head", language)]
        for view in views[:STATUS_ITEMS]:
            first = next((line for line in view.text(language).splitlines() if line.strip()), "")
            first = fit_telegram(first.strip(), "", 200).text
            title = telegram_escape(view.incident_title)
            lines = [f"<b>{title}</b>"]
            if pinned := view.instruction.get(language) or view.instruction.get("nl"):
                head = say("instruction_head", language)
                lines.append(f"📌 <b>{head}:</b> {telegram_escape(pinned)}")
            lines += [telegram_escape(first), telegram_escape(view.url)]
            items.append("\n".join(lines))
        return "\n\n".join(items)

    # --- talking to the resident ------------------------------------------------------------

    async def _say(
        self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        """Through the core's outbox (``hooks.reply``): paced with everything else this bot
        sends, retried on flood control or an outage, and sent by whichever process runs the
        dispatcher. Only when the core cannot take it (its database is down) is it tried once
        directly, so the resident still hears something."""
        data = {"reply_markup": keyboard.to_dict()} if keyboard else None
        try:
            await self.hooks.reply(
                channel=self.name,
                address=str(chat_id),
                text=text,
                data=data,
                language=self._languages.get(chat_id),
                ttl_seconds=REPLY_TTL,
            )
            return
        except Exception:
            log.exception("queueing a reply to a Telegram resident failed; sending it directly")
        try:
            await self.bot.send_message(chat_id, text, parse_mode=PARSE_MODE, reply_markup=keyboard)
        except TelegramError as exc:
            log.warning("replying to a Telegram resident failed: %s", type(exc).__name__)

    async def _answer(self, query: CallbackQuery, text: str | None = None) -> None:
        """Stops the button's spinner; an expired query only means we were slow."""
        try:
            await self.bot.answer_callback_query(query.id, text=text)
        except TelegramError as exc:
            log.info("answering a Telegram button failed: %s", type(exc).__name__)

    # --- per-process hints ------------------------------------------------------------------

    def _language(self, chat_id: int, user: User | None) -> str:
        return self._languages.get(chat_id) or language_of(user.language_code if user else None)

    def _remember(self, chat_id: int, language: str) -> None:
        self._languages[chat_id] = language
        self._languages.move_to_end(chat_id)
        while len(self._languages) > MEMORY:
            self._languages.popitem(last=False)


def sender_of(data: dict[str, Any]) -> str | None:
    """The chat an update comes from, so erasing that resident finds it while it is stored."""
    with suppress(Exception):  # an update PTB cannot read is still stored, without a sender
        update = Update.de_json(with_defaults(data), None)
        chat = update.effective_chat or update.effective_user  # a private chat's id is the user's
        return str(chat.id) if chat else None
    return None


def with_defaults(data: Any) -> Any:
    """Fill fields the Bot API made required after its documentation's examples were written
    (``is_bot``, ``chat_instance``): PTB refuses objects without them, and a resident's message
    must not be lost over a flag we never read."""
    if isinstance(data, list):
        return [with_defaults(item) for item in data]
    if not isinstance(data, dict):
        return data
    filled = {key: with_defaults(value) for key, value in data.items()}
    for key, defaults in REQUIRED_DEFAULTS.items():
        if isinstance(filled.get(key), dict):
            filled[key] = defaults | filled[key]
    return filled
