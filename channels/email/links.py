"""The one-click unsubscribe link of every update mail (RFC 8058).

``POST /email/unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` (what a mail client
sends) or from the page's button unsubscribes at once. ``GET`` only shows the page with the
button: mail scanners that follow links must not unsubscribe anybody. The token is the address
signed by the core (``ChannelContext.signer``); it talks to the core through its hooks.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from channels.email.channel import UNSUBSCRIBE, UNSUBSCRIBE_PATH

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel

TEXTS = {
    "nl": {
        "title": "Afmelden voor de crisisberichten per e-mail",
        "ask": "Wilt u geen crisisberichten meer per e-mail ontvangen?",
        "button": "Afmelden",
        "done": "U bent afgemeld. U ontvangt geen crisisberichten meer per e-mail.",
        "unknown": "Deze link is niet (meer) geldig.",
    },
    "en": {
        "title": "Unsubscribe from the crisis updates by e-mail",
        "ask": "Do you no longer want to receive crisis updates by e-mail?",
        "button": "Unsubscribe",
        "done": "You are unsubscribed. You will receive no more crisis updates by e-mail.",
        "unknown": "This link is not valid (any more).",
    },
}


def _page(lang: str, body: str, status_code: int = 200) -> HTMLResponse:
    title = html.escape(TEXTS[lang]["title"])
    document = (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(document, status_code=status_code, headers=headers)


def links_router(channel: EmailChannel) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    signer, hooks = channel.context.signer, channel.context.hooks
    assert signer is not None and hooks is not None
    path = UNSUBSCRIBE_PATH + "{token}"

    def language(request: Request) -> str:
        return "en" if request.query_params.get("lang") == "en" else "nl"

    @router.get(path)
    async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
        lang = language(request)
        if signer.unsign(UNSUBSCRIBE, token) is None:
            return _page(lang, f"<p>{html.escape(TEXTS[lang]['unknown'])}</p>", 404)
        form = (
            f"<p>{html.escape(TEXTS[lang]['ask'])}</p>"
            f'<form method="post"><input type="hidden" name="List-Unsubscribe" '
            f'value="One-Click"><button type="submit">{html.escape(TEXTS[lang]["button"])}'
            "</button></form>"
        )
        return _page(lang, form)

    @router.post(path)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        lang = language(request)
        address = signer.unsign(UNSUBSCRIBE, token)
        if address is None:
            return _page(lang, f"<p>{html.escape(TEXTS[lang]['unknown'])}</p>", 404)
        await hooks.unsubscribe(channel=channel.name, address=address)
        return _page(lang, f'<p role="status">{html.escape(TEXTS[lang]["done"])}</p>')

    return router
