"""Vocabulary shared by every domain package: time, severities, languages, JSON columns, and
the text that may enter and leave the service."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol, cast

from pydantic import AfterValidator, Field
from sqlalchemy import DateTime, Enum, Table, TypeDecorator
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlmodel import SQLModel

from channels.base import DEFAULT_LANGUAGE as DEFAULT
from channels.base import LANGUAGES


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which has no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Stored(Protocol):
    id: int | None


def stored_id(row: _Stored) -> int:
    """The primary key of a row known to be flushed: SQLModel types every ``id`` as optional
    because a new row has none until then."""
    assert row.id is not None, f"{type(row).__name__} used before it was flushed"
    return row.id


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for bulk statements (SQLModel leaves ``__table__`` untyped)."""
    table = sa_inspect(model).local_table
    assert isinstance(table, Table)
    return table


def rows_matched(result: Result[Any]) -> int:
    """The row count of an UPDATE, DELETE or INSERT: ``Session.execute`` is typed to return a
    plain ``Result``, but for these statements it is a ``CursorResult``."""
    return cast(CursorResult[Any], result).rowcount


def enum_type(enum: type[StrEnum]) -> Enum:
    """Enums stored as their string values in a VARCHAR: portable, and a new value needs no
    ``ALTER TYPE`` on PostgreSQL."""
    return Enum(enum, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class Severity(StrEnum):
    info = "info"
    advisory = "advisory"
    warning = "warning"
    emergency = "emergency"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def at_most(self) -> list[str]:
        """Every severity at or below this one: the subscribers' minimums this update meets."""
        return [s.value for s in Severity if s.rank <= self.rank]


# The languages are declared once, in the adapter interface (adapters may not import the core).
Language = StrEnum("Language", [(code, code) for code in LANGUAGES])  # type: ignore[misc]
DEFAULT_LANGUAGE = Language(DEFAULT)


def as_bodies(body: str | dict[str, Any]) -> dict[str, str]:
    """``"text"`` or ``{"nl": ..., "en": ...}`` to a dict of non-empty texts per language."""
    if isinstance(body, str):
        return {DEFAULT_LANGUAGE.value: body.strip()} if body.strip() else {}
    return {str(lang): str(text).strip() for lang, text in body.items() if str(text).strip()}


# Everything outside XML 1.0's Char production: C0 controls other than tab, LF and CR (NUL
# also breaks PostgreSQL), lone surrogates (not encodable as UTF-8) and U+FFFE/U+FFFF.
XML_UNSAFE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters no XML document (Atom, CAP, SVG) can carry: for text
    from outside that cannot be refused (a resident's SMS, a feed) and for every output."""
    return XML_UNSAFE.sub("", text)


def _storable(text: str) -> str:
    if found := XML_UNSAFE.search(text):
        raise ValueError(
            f"contains U+{ord(found.group()):04X} at position {found.start()}: control "
            "characters (other than tab and new line) and unpaired surrogates are not accepted"
        )
    return text


# Free text typed into the API or a form. Give every use a maximum length, e.g.
# ``Annotated[PlainText, Field(max_length=200)]``.
PlainText = Annotated[str, AfterValidator(_storable)]
# A short name typed by a program: an area code, a channel or format name, a language key.
Code = Annotated[PlainText, Field(max_length=40)]
