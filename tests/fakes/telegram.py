"""Telegram Bot API stand-in: ``/bot<token>/<method>`` with the real answer and error shapes.

    with FakeTelegram() as tg:
        bot = telegram.Bot(tg.token, base_url=f"{tg.url}/bot")  # PTB appends the token itself
        tg.state.blocked_chats.add(42)          # 403 "Forbidden: bot was blocked by the user"
        tg.state.unknown_chats.add(43)          # 400 "Bad Request: chat not found"
        tg.state.migrated_chats[-5] = -1005     # 400 + parameters.migrate_to_chat_id
        tg.state.chat_limit = SlidingWindow(2, 1.0)  # defaults: 30/s global, 1/s per chat
        tg.state.faults.fail_next(2, 502)       # next 2 calls fail; hang_next(1, 5.0): timeouts
        ... tg.state.sent / edits / rate_limited / requests hold what happened.

Behaviour follows the live API and tdlib's HTML parser: lengths are counted in UTF-16 units after
entity parsing; the error texts are the ones the real server sends. Send methods count against
the rate limits (edits do not, unless added to ``state.limited_methods``); rejected calls
never count. State is touched by the test thread and the server thread; each handler mutates it
without awaiting in between, so the GIL keeps it consistent.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeServer, Faults, SlidingWindow, read_params, retry_seconds

DEFAULT_TOKEN = "123456789:AAHfakeTokenForTests0123456789abcdefg"
MAX_TEXT, MAX_CAPTION = 4096, 1024
SEND_METHODS = {"sendMessage", "sendPhoto"}
TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class SentMessage:
    method: str
    chat_id: int | str
    message_id: int
    text: str | None  # as the client sent it (text or caption), before entity parsing
    parse_mode: str | None
    reply_to_message_id: int | None
    reply_parameters: dict[str, Any] | None
    params: dict[str, Any]
    at: float = field(default_factory=time.time)


@dataclass
class TelegramState:
    token: str = DEFAULT_TOKEN
    known_chats: set[int | str] | None = None  # None: every chat exists except unknown_chats
    unknown_chats: set[int | str] = field(default_factory=set)
    blocked_chats: set[int | str] = field(default_factory=set)
    migrated_chats: dict[int | str, int] = field(default_factory=dict)
    chat_types: dict[int | str, str] = field(default_factory=dict)  # e.g. {-1001: "channel"}
    expired_callback_queries: set[str] = field(default_factory=set)
    global_limit: SlidingWindow = field(default_factory=lambda: SlidingWindow(30, 1.0))
    chat_limit: SlidingWindow = field(default_factory=lambda: SlidingWindow(1, 1.0))
    limited_methods: set[str] = field(default_factory=lambda: set(SEND_METHODS))
    faults: Faults = field(default_factory=Faults)
    sent: list[SentMessage] = field(default_factory=list)
    edits: list[SentMessage] = field(default_factory=list)
    rate_limited: list[dict[str, Any]] = field(default_factory=list)  # every 429 given
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    messages: dict[tuple[int | str, int], dict[str, Any]] = field(default_factory=dict)
    _counters: dict[int | str, itertools.count] = field(default_factory=dict, repr=False)

    def texts(self, chat_id: int | str) -> list[str | None]:
        return [m.text for m in self.sent if m.chat_id == chat_id]

    def next_message_id(self, chat_id: int | str) -> int:
        return next(self._counters.setdefault(chat_id, itertools.count(1)))


class FakeTelegram(FakeServer):
    def __init__(self, state: TelegramState | None = None) -> None:
        self.state = state or TelegramState()
        self.token = self.state.token
        super().__init__(create_app(self.state))


def create_app(state: TelegramState) -> Starlette:
    app = Starlette(routes=[Route("/bot{token}/{method}", _endpoint, methods=["GET", "POST"])])
    app.state.tg = state
    app.state.faults = state.faults
    return app


async def _endpoint(request: Request) -> Response:
    state: TelegramState = request.app.state.tg
    status = await state.faults.apply()
    if status is not None:
        return _server_error(status)
    token, method = request.path_params["token"], request.path_params["method"]
    if token != state.token:  # a well-formed but wrong token is 401, garbage is 404
        code = 401 if re.fullmatch(r"\d+:[\w-]{30,}", token) else 404
        return _error(ApiError(code, "Unauthorized" if code == 401 else "Not Found"))
    # Method names are case-insensitive in the Bot API.
    handler = next((h for name, h in METHODS.items() if name.lower() == method.lower()), None)
    if handler is None:
        return _error(ApiError(404, "Not Found"))
    params, files = await read_params(request)
    state.requests.append((method, params))
    try:
        result, description = await handler(state, params, files), None
    except ApiError as exc:
        return _error(exc)
    if isinstance(result, tuple):
        result, description = result
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def _error(exc: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    headers = {}
    if exc.parameters:
        body["parameters"] = exc.parameters
        if "retry_after" in exc.parameters:
            headers["Retry-After"] = str(exc.parameters["retry_after"])
    return JSONResponse(body, status_code=exc.code, headers=headers)


def _server_error(status: int) -> Response:
    if status in (502, 504):  # nginx in front answers these itself, as an HTML page
        return HTMLResponse(
            f"<html><body><center><h1>{status}</h1></center><hr><center>nginx"
            "</center></body></html>",
            status,
        )
    return _error(ApiError(status, "Internal Server Error"))


# --- parameters and chats -------------------------------------------------------------------


def _chat_id(params: dict[str, Any], name: str = "chat_id") -> int | str:
    value = params.get(name)
    if value in (None, ""):
        raise ApiError(400, f"Bad Request: {name} is empty")
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _json_field(params: dict[str, Any], name: str) -> Any:
    # Form and multipart bodies carry objects as JSON strings, JSON bodies carry them inline.
    value = params.get(name)
    return json.loads(value) if isinstance(value, str) else value


def _chat(state: TelegramState, chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):  # "@channelusername"
        numeric = -1000000000000 - int(hashlib.sha1(chat_id.encode()).hexdigest()[:8], 16)
        return {"id": numeric, "title": chat_id[1:], "username": chat_id[1:], "type": "channel"}
    kind = state.chat_types.get(chat_id) or (
        "private" if chat_id > 0 else "supergroup" if str(chat_id).startswith("-100") else "group"
    )
    if kind == "private":
        return {"id": chat_id, "first_name": "Resident", "type": "private"}
    return {"id": chat_id, "title": f"Chat {chat_id}", "type": kind}


def _check_chat(state: TelegramState, chat_id: int | str) -> None:
    if chat_id in state.migrated_chats:
        raise ApiError(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": state.migrated_chats[chat_id]},
        )
    unknown = state.known_chats is not None and chat_id not in state.known_chats
    if unknown or chat_id in state.unknown_chats:
        raise ApiError(400, "Bad Request: chat not found")
    if chat_id in state.blocked_chats:
        kind = _chat(state, chat_id)["type"]
        reason = {
            "private": "bot was blocked by the user",
            "channel": "bot is not a member of the channel chat",
        }.get(kind, f"bot was kicked from the {kind} chat")
        raise ApiError(403, f"Forbidden: {reason}")


def _admit(state: TelegramState, method: str, chat_id: int | str) -> None:
    """Apply both sliding windows; record the send only when both allow it."""
    if method not in state.limited_methods:
        return
    waits = {"global": state.global_limit.wait_time(), "chat": state.chat_limit.wait_time(chat_id)}
    scope, wait = max(waits.items(), key=lambda kv: kv[1])
    if wait > 0:
        seconds = retry_seconds(wait)
        state.rate_limited.append(
            {
                "method": method,
                "chat_id": chat_id,
                "scope": scope,
                "retry_after": seconds,
                "at": time.time(),
            }
        )
        raise ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
    state.global_limit.record()
    state.chat_limit.record(chat_id)


# --- text, HTML and lengths -----------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities, or ApiError with tdlib's message for malformed markup."""
    out: list[str] = []
    stack: list[tuple[str, int, dict[str, str]]] = []  # (tag, utf16 start, attributes)
    entities: list[dict[str, Any]] = []
    pos = 0
    for match in re.finditer(r"<[^>]*>?|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|&", source):
        token = match.group()
        offset = len(source[: match.start()].encode("utf-8"))
        if not token.startswith("<"):
            piece = _entity(token, match.group(1)) if match.group(1) else token
            out.append(piece)
            pos += utf16_len(piece)
        elif not token.endswith(">"):
            raise _parse_error(f"Unclosed start tag at byte offset {offset}")
        elif token.startswith("</"):
            entities.extend(_close_tag(token, offset, stack, pos))
        else:
            name, attrs = _open_tag(token, offset)
            stack.append((name, pos, attrs))
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _entity(token: str, name: str) -> str:
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])
        return chr(code) if code <= 0x10FFFF else token
    # Only these four named entities are supported; anything else stays literal.
    return {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(name, token)


def _open_tag(token: str, offset: int) -> tuple[str, dict[str, str]]:
    name = re.match(r"<([^\s>/]*)", token).group(1).lower()  # type: ignore[union-attr]
    if name not in TAG_TYPES:
        raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs = {
        k.lower(): html.unescape(v or w)
        for k, v, w in re.findall(r"([\w-]+)\s*=\s*(?:\"([^\"]*)\"|'?([^'\s>]*)'?)", token)
    }
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise _parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    return name, attrs


def _close_tag(token: str, offset: int, stack: list[Any], pos: int) -> list[dict[str, Any]]:
    if not stack:
        raise _parse_error(f"Unexpected end tag at byte offset {offset}")
    name, start, attrs = stack.pop()
    found = token[2:-1].strip().lower()
    if found and found != name:
        raise _parse_error(
            f'Unmatched end tag at byte offset {offset}, expected "</{name}>", found "</{found}>"'
        )
    if pos == start or (name == "a" and "href" not in attrs):
        return []
    entity: dict[str, Any] = {"offset": start, "length": pos - start, "type": TAG_TYPES[name]}
    if name == "a":
        entity["url"] = attrs["href"]
    if name == "blockquote" and "expandable" in token:
        entity["type"] = "expandable_blockquote"
    return [entity]


def _parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def _format(text: str, parse_mode: str | None, limit: int, kind: str) -> dict[str, Any]:
    """Validate text or caption and return its Message fields (text + entities)."""
    plain, entities = parse_html(text) if (parse_mode or "").upper() == "HTML" else (text, [])
    if not plain.strip():
        raise ApiError(400, f"Bad Request: message {kind} is empty")
    if utf16_len(plain) > limit:
        raise ApiError(
            400,
            "Bad Request: message is too long"
            if kind == "text"
            else "Bad Request: message caption is too long",
        )
    key, entities_key = ("text", "entities") if kind == "text" else ("caption", "caption_entities")
    # The API omits empty entity lists; edits compare against these exact fields.
    return {key: plain, entities_key: entities or None}


# --- methods --------------------------------------------------------------------------------


def _bot_user(state: TelegramState) -> dict[str, Any]:
    return {
        "id": int(state.token.split(":")[0]),
        "is_bot": True,
        "first_name": "Crisis Alerts",
        "username": "crisis_alerts_test_bot",
    }


async def get_me(state: TelegramState, params: dict, files: dict) -> dict[str, Any]:
    return {
        **_bot_user(state),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _reply(state: TelegramState, chat_id: int | str, params: dict) -> dict[str, Any] | None:
    reply = _json_field(params, "reply_parameters") or (
        {"message_id": int(params["reply_to_message_id"])}
        if params.get("reply_to_message_id")
        else None
    )
    if reply is None:
        return None
    original = state.messages.get((reply.get("chat_id", chat_id), int(reply["message_id"])))
    if original is None and not reply.get("allow_sending_without_reply"):
        raise ApiError(400, "Bad Request: message to be replied not found")
    return {"parameters": reply, "message": original}


async def _send(
    state: TelegramState, method: str, params: dict, content: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    chat_id = _chat_id(params)
    _check_chat(state, chat_id)
    fields = content()
    reply = _reply(state, chat_id, params)
    _admit(state, method, chat_id)
    chat = _chat(state, chat_id)
    message: dict[str, Any] = {
        "message_id": state.next_message_id(chat_id),
        "date": int(time.time()),
        "chat": chat,
        **{k: v for k, v in fields.items() if v},
    }
    if chat["type"] == "channel":
        message["sender_chat"] = chat
    else:
        message["from"] = _bot_user(state)
    if reply and reply["message"]:
        message["reply_to_message"] = reply["message"]
    state.messages[(chat_id, message["message_id"])] = message
    state.sent.append(
        SentMessage(
            method,
            chat_id,
            message["message_id"],
            params.get("text", params.get("caption")),
            params.get("parse_mode"),
            reply and int(reply["parameters"]["message_id"]),
            reply and reply["parameters"],
            params,
        )
    )
    return message


async def send_message(state: TelegramState, params: dict, files: dict) -> dict[str, Any]:
    text, mode = str(params.get("text", "")), params.get("parse_mode")
    return await _send(state, "sendMessage", params, lambda: _format(text, mode, MAX_TEXT, "text"))


async def send_photo(state: TelegramState, params: dict, files: dict) -> dict[str, Any]:
    upload = files.get("photo")  # a multipart upload, or a file_id / URL string
    source = await upload.read() if upload is not None else str(params.get("photo") or "")
    if not source:
        raise ApiError(400, "Bad Request: there is no photo in the request")
    digest = hashlib.sha1(source if isinstance(source, bytes) else source.encode()).hexdigest()

    def content() -> dict[str, Any]:
        caption, mode = params.get("caption"), params.get("parse_mode")
        fields = _format(caption, mode, MAX_CAPTION, "caption") if caption else {}
        photo = [
            {
                "file_id": f"AgACAgQAAxkDAAI{digest[:20]}{w}",
                "width": w,
                "height": h,
                "file_unique_id": f"AQAD{digest[:8]}{w}",
                "file_size": len(source) * w // 800,
            }
            for w, h in [(90, 67), (320, 240), (800, 600)]
        ]
        return {"photo": photo, **fields}

    return await _send(state, "sendPhoto", params, content)


async def _edit(state: TelegramState, params: dict, files: dict, *, key: str) -> Any:
    method, limit = (
        ("editMessageText", MAX_TEXT) if key == "text" else ("editMessageCaption", MAX_CAPTION)
    )
    if params.get("inline_message_id"):
        return True  # inline messages are not stored; the API answers plain True
    chat_id = _chat_id(params)
    _check_chat(state, chat_id)
    message = state.messages.get((chat_id, int(params.get("message_id") or 0)))
    if message is None:
        raise ApiError(400, "Bad Request: message to edit not found")
    if (key == "text") != ("text" in message):
        raise ApiError(400, f"Bad Request: there is no {key} in the message to edit")
    new = (
        _format(str(params[key]), params.get("parse_mode"), limit, key)
        if params.get(key)
        else {"caption": None, "caption_entities": None}
    )  # empty caption = remove it
    if all(message.get(k) == v for k, v in new.items()):
        raise ApiError(400, NOT_MODIFIED)
    _admit(state, method, chat_id)
    message.update({k: v for k, v in new.items() if v}, edit_date=int(time.time()))
    for k in (k for k, v in new.items() if not v):
        message.pop(k, None)
    state.edits.append(
        SentMessage(
            method,
            chat_id,
            message["message_id"],
            params.get(key),
            params.get("parse_mode"),
            None,
            None,
            params,
        )
    )
    return message


async def set_webhook(state: TelegramState, params: dict, files: dict) -> tuple[bool, str]:
    url = str(params.get("url") or "")
    if not url:
        return await delete_webhook(state, params, files)
    if not url.startswith("https://"):
        raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    state.webhook = {
        "url": url,
        "max_connections": int(params.get("max_connections") or 40),
        "secret_token": params.get("secret_token"),
        "allowed_updates": _json_field(params, "allowed_updates"),
    }
    return True, "Webhook was set"


async def delete_webhook(state: TelegramState, params: dict, files: dict) -> tuple[bool, str]:
    was_set, state.webhook = bool(state.webhook), {}
    return True, "Webhook was deleted" if was_set else "Webhook is already deleted"


async def get_webhook_info(state: TelegramState, params: dict, files: dict) -> dict[str, Any]:
    hook = {k: v for k, v in state.webhook.items() if v and k != "secret_token"}
    return {"url": "", "has_custom_certificate": False, "pending_update_count": 0, **hook}


async def answer_callback_query(state: TelegramState, params: dict, files: dict) -> bool:
    query_id = str(params.get("callback_query_id") or "")
    if not query_id or query_id in state.expired_callback_queries:
        raise ApiError(
            400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )
    state.callback_answers.append(params)
    return True


METHODS: dict[str, Callable[..., Any]] = {
    "getMe": get_me,
    "sendMessage": send_message,
    "sendPhoto": send_photo,
    "editMessageText": partial(_edit, key="text"),
    "editMessageCaption": partial(_edit, key="caption"),
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "answerCallbackQuery": answer_callback_query,
}
