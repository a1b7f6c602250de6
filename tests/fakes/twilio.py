"""Twilio Programmable Messaging stand-in (REST API 2010-04-01) with signed status callbacks.

Pointing the real client at it: every ``twilio.rest.Client`` product is a ``Domain`` whose
``base_url`` (``"https://api.twilio.com"`` for ``client.api``) is read on every request
(``Domain.absolute_url``), so after construction ``client.api.base_url = fake.url`` routes
``client.messages.create(...)`` to the fake. ``edge``/``region`` must stay unset (they are read
from TWILIO_EDGE/TWILIO_REGION too) because ``get_hostname`` would rewrite the host.
``twilio_client(fake)`` does exactly that and sets a short HTTP timeout:

    with FakeTwilio() as fake:
        client = twilio_client(fake)
        fake.state.unsubscribed.add("+31612345678")      # -> 400, code 21610
        fake.state.blocked_prefixes.add("+7")            # -> 400, code 21408
        fake.state.delivery_failures["+31600000001"] = ("undelivered", 30003)
        fake.state.rate_limit = SlidingWindow(10, 1.0)   # -> 429, code 20429
        fake.state.pair_limit = SlidingWindow(1, 30.0)   # per number -> 429, code 14107
        fake.state.pair_limit_in_callback = True         # ... or 201, then failed with 14107
        fake.state.faults.fail_next(1, 503)              # or hang_next(1, seconds); 429: 20429
        fake.stop(); fake.start()                        # refused meanwhile, then the same port
        ... fake.state.messages / callbacks / rate_limited hold what happened.

After a message is accepted with a StatusCallback URL, the fake POSTs "sent" and then
"delivered" (or the configured failure) there, form-encoded and signed with
X-Twilio-Signature exactly as Twilio does. Callbacks only go to 127.0.0.1/localhost.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.server import FakeServer, Faults, SlidingWindow, read_params

API = "2010-04-01"
E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_BODY = 1600
TEMPLATE_MAX = 1024  # WhatsApp: a template's text with its variables (63021 beyond)
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
PLACEHOLDER = re.compile(r"\{\{(\w{1,16})\}\}")
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")  # each costs an escape septet too
COUNTRIES = {"+31": "NL", "+32": "BE", "+49": "DE", "+44": "GB", "+33": "FR", "+1": "US"}


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JSONResponse:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
            **self.extra,
        }
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if self.status == 401 else {}
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass
class Callback:
    url: str
    params: dict[str, str]
    signature: str
    status_code: int | None  # receiver's answer; None if it could not be reached


@dataclass
class TwilioState:
    account_sid: str = "AC" + "0123456789abcdef" * 2
    auth_token: str = "fake_auth_token_0123456789abcdef"
    unsubscribed: set[str] = field(default_factory=set)  # -> 21610 at create time
    blocked_prefixes: set[str] = field(default_factory=set)  # geo permissions -> 21408
    delivery_failures: dict[str, tuple[str, int]] = field(default_factory=dict)
    rate_limit: SlidingWindow = field(default_factory=lambda: SlidingWindow(10, 1.0))
    # Twilio's loop guard between two numbers (error 14107, the pair held for 30 s). Off by
    # default. Twilio documents it as a message that fails after it was accepted: with
    # ``pair_limit_in_callback`` the stand-in does that (201, then a "failed" callback with
    # 14107); without, it refuses the create call (429), a per-recipient refusal that reaches
    # the adapter synchronously.
    pair_limit: SlidingWindow | None = None
    pair_limit_in_callback: bool = False
    callback_delay: float = 0.0  # seconds between accepting and each callback
    # WhatsApp Content templates: ContentSid -> text with {{1}}, {{2}}… placeholders. With
    # ``whatsapp_window`` on, free-form text to a number that has not written in the last 24
    # hours (not in ``whatsapp_sessions``) is accepted and then fails with 63016, as on Twilio.
    content_templates: dict[str, str] = field(default_factory=dict)
    whatsapp_window: bool = False
    whatsapp_sessions: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    messages: list[dict[str, Any]] = field(default_factory=list)  # accepted resources
    accepted: list[tuple[str, float]] = field(default_factory=list)  # (to, time) of those sent
    refusals: list[tuple[str, float, int]] = field(default_factory=list)  # (to, time, code)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every create's params
    callbacks: list[Callback] = field(default_factory=list)
    rate_limited: list[dict[str, Any]] = field(default_factory=list)

    def bodies_to(self, to: str) -> list[str]:
        return [m["body"] for m in self.messages if m["to"] == to]

    def wait_for_callbacks(self, n: int, timeout: float = 30.0) -> list[Callback]:
        deadline = time.monotonic() + timeout
        while len(self.callbacks) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.callbacks)


class FakeTwilio(FakeServer):
    def __init__(self, state: TwilioState | None = None) -> None:
        self.state = state or TwilioState()
        self.account_sid, self.auth_token = self.state.account_sid, self.state.auth_token
        super().__init__(create_app(self.state))


def twilio_client(fake: FakeTwilio, timeout: float = 2.0) -> Client:
    http_client = TwilioHttpClient(timeout=timeout)
    client = Client(fake.account_sid, fake.auth_token, http_client=http_client)
    client.edge = client.region = None  # keep get_hostname from rewriting 127.0.0.1
    client.api.base_url = fake.url
    return client


def create_app(state: TwilioState) -> Starlette:
    base = f"/{API}/Accounts/{{sid}}"
    app = Starlette(
        routes=[
            Route(f"{base}/Messages.json", create_message, methods=["POST"]),
            Route(f"{base}/Messages/{{message_sid}}.json", fetch_message, methods=["GET"]),
        ]
    )
    app.state.twilio = state
    app.state.faults = state.faults
    return app


# --- request handling -----------------------------------------------------------------------


async def create_message(request: Request) -> JSONResponse:
    state: TwilioState = request.app.state.twilio
    params, _ = await read_params(request)
    try:
        await _preflight(state, request)
        state.requests.append(params)
        message = _validate_and_build(state, request.path_params["sid"], params)
        outcome = _admit(state, message["to"]) or _window(state, message, params)
    except TwilioError as exc:
        state.refusals.append((str(params.get("To") or ""), time.time(), exc.code))
        return exc.response()
    state.messages.append(message)
    if outcome is None:
        state.accepted.append((message["to"], time.time()))
    task = None
    if params.get("StatusCallback"):
        task = BackgroundTask(_deliver, state, message, str(params["StatusCallback"]), outcome)
    return JSONResponse(message, status_code=201, background=task)


async def fetch_message(request: Request) -> JSONResponse:
    state: TwilioState = request.app.state.twilio
    try:
        await _preflight(state, request)
    except TwilioError as exc:
        return exc.response()
    sid = request.path_params["message_sid"]
    found = next((m for m in state.messages if m["sid"] == sid), None)
    if found is None:
        return TwilioError(
            404,
            20404,
            f"The requested resource {request.url.path} was not found",
        ).response()
    return JSONResponse(found)


async def _preflight(state: TwilioState, request: Request) -> None:
    """Faults first (an outage hides everything), then HTTP Basic auth."""
    status = await state.faults.apply()
    if status == 429:  # a storm of account-wide refusals
        raise TwilioError(429, 20429, "Too Many Requests")
    if status is not None:
        code = 20503 if status == 503 else 20500
        text = "Service Unavailable" if status == 503 else "Internal Server Error"
        raise TwilioError(status, code, text)
    if _credentials(request) != (state.account_sid, state.auth_token):
        raise TwilioError(
            401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
        )
    if request.path_params["sid"] != state.account_sid:
        raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")


def _credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _admit(state: TwilioState, to: str) -> tuple[str, int] | None:
    """Refuse the call, or return the failure the message will end in (None: it goes out)."""
    if state.pair_limit is not None and (wait := state.pair_limit.wait_time(to)) > 0:
        state.rate_limited.append({"to": to, "at": time.time(), "wait": wait, "code": 14107})
        if state.pair_limit_in_callback:
            return ("failed", 14107)
        raise TwilioError(429, 14107, "SMS send rate limit exceeded")
    wait = state.rate_limit.wait_time(state.account_sid)
    if wait > 0:
        state.rate_limited.append({"to": to, "at": time.time(), "wait": wait, "code": 20429})
        raise TwilioError(429, 20429, "Too Many Requests")
    state.rate_limit.record(state.account_sid)
    if state.pair_limit is not None:
        state.pair_limit.record(to)
    return None


def _window(
    state: TwilioState, message: dict[str, Any], params: dict[str, Any]
) -> tuple[str, int] | None:
    """WhatsApp's customer-service window, and the template text's length limit."""
    to = message["to"]
    if not to.startswith("whatsapp:"):
        return None
    if params.get("ContentSid"):
        return ("failed", 63021) if len(message["body"]) > TEMPLATE_MAX else None
    if state.whatsapp_window and to.removeprefix("whatsapp:") not in state.whatsapp_sessions:
        return ("failed", 63016)
    return None


def _template_text(state: TwilioState, params: dict[str, Any]) -> str:
    """The text a Content template becomes with its ContentVariables (21655, 21656 if not)."""
    sid, variables = str(params["ContentSid"]), params.get("ContentVariables") or "{}"
    if not CONTENT_SID.fullmatch(sid) or sid not in state.content_templates:
        raise TwilioError(400, 21655, "The ContentSid is Invalid")
    try:
        values = json.loads(variables)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise TwilioError(400, 21656, "The ContentVariables Parameter is invalid")
    return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), state.content_templates[sid])


def _validate_and_build(state: TwilioState, sid: str, params: dict[str, Any]) -> dict[str, Any]:
    to, sender = str(params.get("To") or ""), params.get("From")
    if params.get("ContentVariables") and not params.get("ContentSid"):
        raise TwilioError(
            400, 21654, "A ContentSid must be specified if ContentVariables are provided"
        )
    if params.get("ContentSid"):
        params = {**params, "Body": _template_text(state, params)}
    service, body = params.get("MessagingServiceSid"), str(params.get("Body") or "")
    media = params.get("MediaUrl") or []
    media = [media] if isinstance(media, str) else list(media)
    if not to:
        raise TwilioError(
            400, 21604, "The destination 'To' phone number is required to send an SMS"
        )
    if not sender and not service:
        raise TwilioError(
            400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."
        )
    if not body and not media:
        raise TwilioError(400, 21602, "Message body is required.")
    number = to.removeprefix("whatsapp:")
    if not E164.fullmatch(number):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if any(number.startswith(prefix) for prefix in state.blocked_prefixes):
        raise TwilioError(
            400,
            21408,
            "Permission to send an SMS has not been enabled for the "
            f"region indicated by the 'To' number: {number}",
        )
    if number in state.unsubscribed:
        raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
    if len(body) > MAX_BODY:
        raise TwilioError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    return _resource(sid, to, sender, service, body, media)


def _resource(
    account: str, to: str, sender: str | None, service: str | None, body: str, media: list[str]
) -> dict[str, Any]:
    """The Message resource exactly as the 2010 API serialises it (numbers as strings)."""
    sid = "SM" + secrets.token_hex(16)
    now = formatdate(usegmt=False).replace("-0000", "+0000")
    uri = f"/{API}/Accounts/{account}/Messages/{sid}"
    return {
        "account_sid": account,
        "api_version": API,
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": service,
        "num_media": str(len(media)),
        "num_segments": str(segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        # A messaging service picks the sender later, so Twilio reports "accepted" first.
        "status": "queued" if sender else "accepted",
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": to,
        "uri": f"{uri}.json",
    }


def segments(body: str) -> int:
    """SMS segments: GSM-7 (160 / 153 septets) unless any character needs UCS-2 (70 / 67)."""
    if not body:
        return 1
    if all(ch in GSM7 or ch in GSM7_EXTENDED for ch in body):
        units, single, multi = sum(2 if ch in GSM7_EXTENDED else 1 for ch in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


# --- status callbacks and inbound webhooks --------------------------------------------------


def _callback_params(
    state: TwilioState, message: dict[str, Any], status: str, error: int | None
) -> dict[str, str]:
    # Field order and names follow real callbacks (fixtures/twilio/status_callback_*).
    params: dict[str, str] = {"ErrorCode": str(error)} if error else {}
    if status == "delivered":
        params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
    params |= {
        "SmsSid": message["sid"],
        "SmsStatus": status,
        "MessageStatus": status,
        "To": message["to"],
    }
    if message["messaging_service_sid"]:
        params["MessagingServiceSid"] = message["messaging_service_sid"]
    params |= {
        "MessageSid": message["sid"],
        "AccountSid": state.account_sid,
        "From": message["from"] or "+3197010000000",
        "ApiVersion": API,
    }
    return params


async def _deliver(
    state: TwilioState, message: dict[str, Any], url: str, outcome: tuple[str, int] | None
) -> None:
    final, error = outcome or state.delivery_failures.get(
        message["to"].removeprefix("whatsapp:"), ("delivered", None)
    )
    steps = [("sent", None), (final, error)] if final != "failed" else [(final, error)]
    for status, code in steps:
        await asyncio.sleep(state.callback_delay)
        message.update(status=status, error_code=code)
        params = _callback_params(state, message, status, code)
        state.callbacks.append(await _post_signed(url, params, state.auth_token))


async def _post_signed(url: str, params: dict[str, str], auth_token: str) -> Callback:
    signature = RequestValidator(auth_token).compute_signature(url, params)
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        return Callback(url, params, signature, None)  # never leave the machine
    headers = {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            answer = await client.post(url, data=params, headers=headers)
        return Callback(url, params, signature, answer.status_code)
    except httpx.HTTPError:
        return Callback(url, params, signature, None)


def signed_inbound_sms(
    url: str,
    from_: str,
    body: str,
    auth_token: str,
    *,
    to: str = "+3197010000000",
    account_sid: str = "AC" + "0123456789abcdef" * 2,
) -> tuple[dict[str, str], str]:
    """The form fields Twilio POSTs for an incoming SMS, and their X-Twilio-Signature."""
    sid = "SM" + secrets.token_hex(16)
    params = {
        "ToCountry": _country(to),
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": _country(from_),
        "To": to,
        "ToZip": "",
        "NumSegments": str(segments(body)),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API,
    }
    return params, RequestValidator(auth_token).compute_signature(url, params)


def post_inbound_sms(url: str, from_: str, body: str, auth_token: str, **kw: str) -> httpx.Response:
    """POST an inbound-SMS webhook to a local receiver the way Twilio does."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("fakes only talk to 127.0.0.1")
    params, signature = signed_inbound_sms(url, from_, body, auth_token, **kw)
    headers = {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    return httpx.post(url, data=params, headers=headers, timeout=5.0, trust_env=False)


def _country(number: str) -> str:
    number = number.removeprefix("whatsapp:")
    return next(
        (
            c
            for p, c in sorted(COUNTRIES.items(), key=lambda kv: -len(kv[0]))
            if number.startswith(p)
        ),
        "",
    )
