"""Twilio's webhooks: message status callbacks and residents' replies (SMS or WhatsApp).

Every request must carry a valid ``X-Twilio-Signature``. It is checked against the *public*
URL (``BROADCAST_PUBLIC_URL`` + path): behind a proxy the URL this process sees differs from
the one Twilio signed. A forged request gets 403 and changes nothing. Twilio posts and signs
``application/x-www-form-urlencoded`` only: any other body cannot be Twilio's and gets 403 too,
before it is parsed (a multipart body would spool files and break the validator).

A resident's message is stored (``InboundHooks.receive_inbound``, keyed by its ``MessageSid``)
before it is acted on. A resend or replay of a ``MessageSid`` gets an empty TwiML answer and
changes nothing; a message whose process died is handed back by the core after a restart, and
its reply goes out through the outbox instead of the TwiML answer.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import InboundHooks
from channels.errors import AlreadySubscribed, UnknownArea
from channels.sms.channel import ERROR_NAMES, TEMPLATE_CALLBACK

if TYPE_CHECKING:
    from channels.sms.channel import SmsChannel

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})  # read: WhatsApp
UNSUBSCRIBED_CODE = "21610"
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "stoppen"})
HELP_WORDS = frozenset({"help", "info"})
FORM = "application/x-www-form-urlencoded"
MAX_MEDIA = 10  # Twilio's most per message
REPLY_TTL = 24 * 60 * 60  # seconds: a late answer to an SMS still helps, a day-old one less
SUBSCRIBE = re.compile(r"(?:start|aanmelden)(?:\s+(?P<rest>.*))?", re.IGNORECASE | re.DOTALL)
POSTCODE = re.compile(r"(?P<pc4>[1-9]\d{3})\s*(?:[a-z]{2})?", re.IGNORECASE)

# Replies stay GSM-7 and within one segment: a reply is paid for like any SMS.
HELP = (
    "Crisisberichten van de gemeente. Aanmelden: stuur AANMELDEN en uw postcode, bv. "
    "AANMELDEN 6585. Afmelden: stuur STOP. Een vraag? Stuur die als bericht."
)
SUBSCRIBED = "U bent aangemeld voor berichten over postcode {postcode}. Afmelden: stuur STOP."
SUBSCRIBED_ALL = "U bent aangemeld voor berichten over de hele gemeente. Afmelden: stuur STOP."
ALREADY = "U bent al aangemeld. Afmelden: stuur STOP."
UNKNOWN_POSTCODE = "Postcode {postcode} hoort niet bij de gemeente. Stuur bv. AANMELDEN 6585."
ASK_POSTCODE = "Stuur AANMELDEN met uw postcode, bijvoorbeeld AANMELDEN 6585."
BAD_NUMBER = "Aanmelden met dit nummer is helaas niet mogelijk."
STOPPED = "U bent afgemeld. Opnieuw aanmelden: stuur AANMELDEN en uw postcode."
THANKS = "Bedankt, uw vraag is ontvangen. We antwoorden zo snel mogelijk. Bij direct gevaar: 112."


def inbound_router(channel: SmsChannel) -> APIRouter:
    hooks = channel.context.hooks
    assert hooks is not None
    validator = RequestValidator(channel.auth_token)
    router = APIRouter(include_in_schema=False)

    async def verified(request: Request, path: str) -> dict[str, str]:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != FORM:
            log.warning("rejected a Twilio webhook that is not a form", extra={"path": path})
            raise HTTPException(403, f"not a signed Twilio request: Twilio posts {FORM}")
        async with request.form(max_files=0) as form:
            fields = {name: str(value) for name, value in form.multi_items()}
        url = channel.webhook_url(path)
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, form, signature):
            log.warning("rejected a Twilio webhook with a bad signature", extra={"path": path})
            raise HTTPException(403, "invalid X-Twilio-Signature")
        return fields

    async def process(key: str, fields: dict[str, Any]) -> None:
        """A stored message whose process died: the reply goes out through the outbox."""
        sender = str(fields.get("From") or "")
        text = await reply_to(channel, hooks, sender, message_text(fields), key)
        if text and sender:
            await hooks.reply(
                channel=channel.name, address=sender, text=text, ttl_seconds=REPLY_TTL
            )

    hooks.on_inbound(channel.name, process)

    @router.post(channel.status_path, status_code=204)
    async def status_callback(request: Request) -> Response:
        form = await verified(request, channel.status_path)
        template = request.url.query == TEMPLATE_CALLBACK
        await record_status(channel, hooks, form, template=template)
        return Response(status_code=204)

    @router.post(channel.inbound_path)
    async def incoming_message(request: Request) -> Response:
        form = await verified(request, channel.inbound_path)
        key, sender = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
        if not key:
            raise HTTPException(400, "an incoming message without a MessageSid")
        try:
            new = await hooks.receive_inbound(
                channel=channel.name, key=key, payload=form, sender=sender
            )
        except Exception:
            log.exception("storing an incoming %s message failed", channel.name)
            raise HTTPException(503, "the message could not be stored; send it again") from None
        if not new:  # a resend or a replay: acted on once already (or being)
            return twiml(None)
        try:
            text = await reply_to(channel, hooks, sender or "", message_text(form), key)
            await hooks.inbound_done(channel=channel.name, key=key)
        except Exception:  # stored: the core hands it back later, and the reply goes then
            log.exception("handling an incoming %s message failed", channel.name)
            text = None
        return twiml(text)

    return router


async def record_status(
    channel: SmsChannel, hooks: InboundHooks, form: dict[str, str], *, template: bool = False
) -> None:
    """Final statuses move the delivery; sent, queued and the like say nothing new.
    ``template``: the message was a WhatsApp Content template (not free-form text)."""
    sid, status = str(form.get("MessageSid") or ""), str(form.get("MessageStatus") or "").lower()
    code = str(form.get("ErrorCode") or "") or None
    if not sid or status not in FINAL_STATUSES:
        return
    number = int(code) if code and code.isdigit() else None
    error = f"Twilio error {code}" if code else None
    if number in ERROR_NAMES:
        error = f"{error}: {ERROR_NAMES[number]}"
    retry_after = None
    if status != "delivered" and number is not None:
        retry_after = channel.callback_retry_after(number, template=template)
    await hooks.delivery_status(
        channel=channel.name, provider_id=sid, status=status, error=error, retry_after=retry_after
    )
    recipient = str(form.get("To") or "")
    if code == UNSUBSCRIBED_CODE and recipient:
        # A messaging service may accept first and fail later: the resident sent STOP.
        await hooks.unsubscribe(channel=channel.name, address=recipient)


def message_text(form: dict[str, Any]) -> str:
    """The body, with links to any photos (MMS, WhatsApp) so the officer can open them."""
    given = str(form.get("NumMedia") or "0")
    count = min(int(given), MAX_MEDIA) if given.isdigit() else 0
    media = [str(form.get(f"MediaUrl{i}") or "") for i in range(count)]
    return "\n".join(part for part in (str(form.get("Body") or "").strip(), *media) if part)


async def reply_to(
    channel: SmsChannel, hooks: InboundHooks, sender: str, text: str, key: str | None = None
) -> str | None:
    """What the resident asked for: stop, help, subscribe, or a question for the inbox (made
    once per ``key``, the message's ``MessageSid``)."""
    command = text.strip().rstrip(".!").casefold()
    if command in STOP_WORDS:
        await hooks.unsubscribe(channel=channel.name, address=sender)
        return STOPPED if channel.confirms_stop else None  # empty TwiML: no second SMS
    if command in HELP_WORDS or not command:
        return HELP
    if match := SUBSCRIBE.fullmatch(text.strip()):
        return await subscribe(channel, hooks, sender, (match["rest"] or "").strip())
    await hooks.question(channel=channel.name, address=sender, text=text, inbound_key=key)
    return THANKS


async def subscribe(channel: SmsChannel, hooks: InboundHooks, sender: str, rest: str) -> str:
    postcode = None
    if rest:
        if not (match := POSTCODE.fullmatch(rest)):
            return ASK_POSTCODE
        postcode = match["pc4"]
    try:
        channel.normalize_address(sender)  # a clear answer before the core says "invalid"
    except ValueError:
        return BAD_NUMBER
    try:
        await hooks.subscribe(channel=channel.name, address=sender, postcode=postcode)
    except AlreadySubscribed:
        return ALREADY
    except UnknownArea:  # the postcode is the only area asked for
        return UNKNOWN_POSTCODE.format(postcode=postcode)
    return SUBSCRIBED.format(postcode=postcode) if postcode else SUBSCRIBED_ALL


def twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(str(reply), media_type="application/xml")
