"""The language of a request: ``?lang=``, then a cookie, then Dutch.

Everything that needs no request (the ``_`` marker, labels, catalogues, time formatting) lives
in ``broadcast.i18n`` and is re-exported here for the web and console modules and templates.
"""

from __future__ import annotations

from fastapi import Request

from broadcast.i18n import (
    ACTION,
    AMSTERDAM,
    DEFAULT,
    DELIVERY_STATE,
    KIND,
    LANGUAGES,
    ROLE,
    SEVERITY,
    STATE,
    STATUS,
    Gettext,
    _,
    local_time,
    long_time,
    moment,
    plural_translator,
    subject_of,
    supported,
    translations,
    translator,
)

__all__ = [
    "ACTION",
    "DELIVERY_STATE",
    "plural_translator",
    "subject_of",
    "AMSTERDAM",
    "COOKIE",
    "DEFAULT",
    "KIND",
    "LANGUAGES",
    "ROLE",
    "SEVERITY",
    "STATE",
    "STATUS",
    "Gettext",
    "_",
    "language_of",
    "local_time",
    "long_time",
    "moment",
    "translations",
    "translator",
]

COOKIE = "lang"


def language_of(request: Request) -> str:
    return supported(request.query_params.get("lang") or request.cookies.get(COOKIE))
