"""Twilio's webhooks: message status callbacks and residents' replies (SMS or WhatsApp).

Every request must carry a valid ``X-Twilio-Signature``. It is checked against the *public*
URL (``BROADCAST_PUBLIC_URL`` + path): behind a proxy the URL this process sees differs from
the one Twilio signed. A forged request gets 403 and changes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import InboundHooks
from channels.sms.channel import CALLBACK_RETRY_SECONDS, ERROR_NAMES

if TYPE_CHECKING:
    from channels.sms.channel import SmsChannel

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})  # read: WhatsApp
UNSUBSCRIBED_CODE = "21610"
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "stoppen"})
HELP_WORDS = frozenset({"help", "info"})
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
SORRY = "Er ging iets mis. Probeer het later opnieuw of bel de gemeente."


def inbound_router(channel: SmsChannel) -> APIRouter:
    hooks = channel.context.hooks
    assert hooks is not None
    validator = RequestValidator(channel.auth_token)
    router = APIRouter(include_in_schema=False)

    async def verified(request: Request, path: str) -> FormData:
        form = await request.form()
        url = channel.webhook_url(path)
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, form, signature):
            log.warning("rejected a Twilio webhook with a bad signature", extra={"path": path})
            raise HTTPException(403, "invalid X-Twilio-Signature")
        return form

    @router.post(channel.status_path, status_code=204)
    async def status_callback(request: Request) -> Response:
        form = await verified(request, channel.status_path)
        await record_status(channel.name, hooks, form)
        return Response(status_code=204)

    @router.post(channel.inbound_path)
    async def incoming_message(request: Request) -> Response:
        form = await verified(request, channel.inbound_path)
        try:
            text = await reply_to(channel, hooks, str(form.get("From") or ""), message_text(form))
        except Exception:  # the resident gets an answer whatever broke behind it
            log.exception("handling an incoming %s message failed", channel.name)
            text = SORRY
        return twiml(text)

    return router


async def record_status(channel: str, hooks: InboundHooks, form: FormData) -> None:
    """Final statuses move the delivery; sent, queued and the like say nothing new."""
    sid, status = str(form.get("MessageSid") or ""), str(form.get("MessageStatus") or "").lower()
    code = str(form.get("ErrorCode") or "") or None
    if not sid or status not in FINAL_STATUSES:
        return
    number = int(code) if code and code.isdigit() else None
    error = f"Twilio error {code}" if code else None
    if number in ERROR_NAMES:
        error = f"{error}: {ERROR_NAMES[number]}"
    retry_after = CALLBACK_RETRY_SECONDS.get(number) if status != "delivered" else None
    await hooks.delivery_status(
        channel=channel, provider_id=sid, status=status, error=error, retry_after=retry_after
    )
    recipient = str(form.get("To") or "")
    if code == UNSUBSCRIBED_CODE and recipient:
        # A messaging service may accept first and fail later: the resident sent STOP.
        await hooks.unsubscribe(channel=channel, address=recipient)


def message_text(form: FormData) -> str:
    """The body, with links to any photos (MMS, WhatsApp) so the officer can open them."""
    media = [str(form.get(f"MediaUrl{i}") or "") for i in range(int(form.get("NumMedia") or 0))]
    return "\n".join(part for part in (str(form.get("Body") or "").strip(), *media) if part)


async def reply_to(channel: SmsChannel, hooks: InboundHooks, sender: str, text: str) -> str | None:
    """What the resident asked for: stop, help, subscribe, or a question for the inbox."""
    command = text.strip().rstrip(".!").casefold()
    if command in STOP_WORDS:
        await hooks.unsubscribe(channel=channel.name, address=sender)
        return STOPPED if channel.confirms_stop else None  # empty TwiML: no second SMS
    if command in HELP_WORDS or not command:
        return HELP
    if match := SUBSCRIBE.fullmatch(text.strip()):
        return await subscribe(channel, hooks, sender, (match["rest"] or "").strip())
    await hooks.question(channel=channel.name, address=sender, text=text)
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
    except Exception as exc:
        # The core's errors carry an HTTP status; this module may not import them.
        status = getattr(exc, "status_code", None)
        if status == 409:
            return ALREADY
        if status == 422 and postcode:
            return UNKNOWN_POSTCODE.format(postcode=postcode)
        raise
    return SUBSCRIBED.format(postcode=postcode) if postcode else SUBSCRIBED_ALL


def twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(str(reply), media_type="application/xml")
