"""Cursor pagination of the API's lists: newest first, by keyset (``id < last id seen``), so a
row added between two pages shows up on no later page and moves nothing: nothing is lost and
nothing comes twice, unlike an offset. The cursor is opaque to clients (base64url of the
last id)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from sqlmodel import col
from sqlmodel.sql.expression import Select, SelectOfScalar

from broadcast.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**31 - 1  # PostgreSQL ``integer``: see deps.MAX_ID

Query = TypeVar("Query", Select, SelectOfScalar)


def encode(last_id: int) -> str:
    raw = json.dumps({"id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    """The id the next page starts below; a cursor this service did not hand out is 422."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last_id = json.loads(raw)["id"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise Invalid("cursor: not a cursor of this list") from None
    if not isinstance(last_id, int) or not 1 <= last_id <= MAX_ID:
        raise Invalid("cursor: not a cursor of this list")
    return last_id


def keyset(query: Query, id_column: Any, *, before: int | None, limit: int | None) -> Query:
    """``query`` newest first from below ``before``, one row more than ``limit`` (to tell
    whether there is a next page; see ``split``)."""
    query = query.order_by(col(id_column).desc())
    if before is not None:
        query = query.where(col(id_column) < before)
    return query.limit(limit + 1) if limit is not None else query


def split(rows: list, limit: int | None, id_of=lambda row: row.id) -> tuple[list, str | None]:
    """A page of at most ``limit`` rows, and the cursor of the next page (None at the end)."""
    if limit is None or len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode(id_of(page[-1]))
