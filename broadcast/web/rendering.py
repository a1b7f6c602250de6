"""Server-rendered pages: one Jinja2 environment, the reader's language, Amsterdam time."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from broadcast.common import utcnow, xml_safe
from broadcast.web import i18n

ResponseT = TypeVar("ResponseT", bound=Response)

HERE = Path(__file__).parent


def _printable(value):
    """Every ``{{ value }}`` of every page: without what XML cannot carry (a control character
    in an old row or a feed's station name), so a page always encodes and inline SVG parses."""
    if isinstance(value, Markup):
        return Markup(xml_safe(value))
    return xml_safe(value) if isinstance(value, str) else value


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.finalize = _printable
templates.env.filters["local_time"] = i18n.local_time
templates.env.globals["local_time"] = i18n.local_time
LANGUAGE_COOKIE_AGE = 365 * 86400


def language_context(language: str) -> dict:
    """What every template gets for its language: ``_`` and the labels of stored values."""
    _ = i18n.translator(language)
    return {
        "lang": language,
        "other_lang": "en" if language == "nl" else "nl",
        "_": _,
        "severity_label": lambda value: _(i18n.SEVERITY[value]),
        "kind_label": lambda value: _(i18n.KIND[value]) if i18n.KIND[value] else "",
        "status_label": lambda value: _(i18n.STATUS[value]),
        "state_label": lambda value: _(i18n.STATE[value]),
        "ngettext": i18n.plural_translator(language),
        "delivery_state_label": lambda value: _(i18n.DELIVERY_STATE.get(value, value)),
        "role_label": lambda value: _(i18n.ROLE[value]),
        "action_label": lambda code: _(i18n.ACTION[code]) if code in i18n.ACTION else code,
        "subject_of": lambda subject: i18n.subject_of(subject, _),
        "long_time": lambda value: i18n.long_time(value, language),
        "moment": lambda value: i18n.moment(value, language),
    }


def render(request: Request, name: str, *, status_code: int = 200, **context) -> HTMLResponse:
    return remember_language(request, page(request, name, status_code=status_code, **context))


def page(request: Request, name: str, *, status_code: int = 200, **context) -> HTMLResponse:
    """The page alone, without remembering the language (a cached page is shared)."""
    language = i18n.language_of(request)
    settings = request.app.state.settings
    return templates.TemplateResponse(
        request,
        name,
        context
        | language_context(language)
        | {"now": utcnow(), "municipality": settings.municipality},
        status_code=status_code,
    )


def remember_language(request: Request, response: ResponseT) -> ResponseT:
    """``?lang=`` chosen: remembered in a cookie for the next pages."""
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            i18n.COOKIE,
            i18n.language_of(request),
            max_age=LANGUAGE_COOKIE_AGE,
            samesite="lax",
            httponly=True,
            secure=request.url.scheme == "https",
        )
    return response


def fragment(name: str, language: str, **context) -> str:
    """A template rendered outside a request (SSE fragments)."""
    template = templates.env.get_template(name)
    return template.render(**context, **language_context(language))
