"""Receiving one upload: ``multipart/form-data`` read from the request stream straight into a
file of our own, stopping as soon as it passes its limit.

Starlette's form parser would first spool the whole body to a temporary file; this reads the
stream with python-multipart's push parser (the one Starlette uses) and refuses with 413 the
moment the file part is over the limit for its type, which is known from its first bytes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from io import BufferedWriter
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

if TYPE_CHECKING:  # the library declares its callback type for type checkers only
    from python_multipart.multipart import MultipartCallbacks

from broadcast.errors import Invalid, TooLarge, UnsupportedType
from broadcast.i18n import _
from broadcast.media.files import ACCEPTED, SNIFF_BYTES, Detected, Received, sniff

FIELD_LIMIT = 4096  # bytes of a text field (alt texts)
MULTIPART_SLACK = 64 * 1024  # headers and text fields around the file in the body


def _mb(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MB"


class _Reader:
    """Callbacks for python-multipart: one file part (field ``file``), small text fields."""

    def __init__(self, path: Path, limit_for: Callable[[Detected], int]):
        self.path, self.limit_for = path, limit_for
        self.fields: dict[str, str] = {}
        self.detected: Detected | None = None
        self.size = 0
        self.files = 0
        self._limit = 0
        self._head = b""
        self._handle: BufferedWriter | None = None
        self._header_name = self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_name", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def part_begin(self) -> None:
        self._disposition, self._name, self._is_file = b"", None, False
        self._data = bytearray()

    def header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        _type, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise Invalid(_("every part of the form needs a name"))
        self._name = options[b"name"].decode("utf-8", "replace")
        self._is_file = b"filename" in options or self._name == "file"
        if self._is_file:
            self.files += 1
            if self.files > 1 or self._name != "file":
                raise Invalid(_("send exactly one file, in the form field 'file'"))
            self._handle = self.path.open("wb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._is_file:
            if len(self._data) + len(chunk) > FIELD_LIMIT:
                raise Invalid(
                    _("form field %(name)s is longer than %(limit)s bytes"),
                    name=repr(self._name),
                    limit=FIELD_LIMIT,
                )
            self._data += chunk
            return
        if self.detected is None:
            self._head += chunk[:SNIFF_BYTES]
            if len(self._head) >= SNIFF_BYTES:
                self._detect()
        self.size += len(chunk)
        if self._limit and self.size > self._limit:
            raise self._too_large()
        assert self._handle is not None
        self._handle.write(chunk)

    def part_end(self) -> None:
        if self._is_file:
            if self.detected is None:
                self._detect()
            if self.size > self._limit:
                raise self._too_large()
            self.close()
        elif self._name is not None:
            self.fields[self._name] = self._data.decode("utf-8", "replace").strip()

    def _detect(self) -> None:
        self.detected = sniff(self._head)
        if self.detected is None:
            raise UnsupportedType(
                _("the file is not one of the accepted types: %(accepted)s"), accepted=ACCEPTED
            )
        self._limit = self.limit_for(self.detected)

    def _too_large(self) -> TooLarge:
        assert self.detected is not None
        kind, limit = self.detected.kind, _mb(self._limit)
        message = _("the %(kind)s is larger than %(limit)s, the limit for its type")
        return TooLarge(message, kind=kind, limit=limit)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def receive(
    request: Request, directory: Path, *, limit_for: Callable[[Detected], int], largest: int
) -> Received:
    """Read the request's one file part into ``directory``; raise 413, 415 or 422 early."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise Invalid(_("send multipart/form-data with the file in the field 'file'"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > largest + MULTIPART_SLACK:
        raise TooLarge(
            _("the upload is larger than %(limit)s, the largest accepted"), limit=_mb(largest)
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"incoming-{secrets.token_hex(16)}"
    reader = _Reader(path, limit_for)
    parser = MultipartParser(options[b"boundary"], reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if reader.detected is None:
            raise Invalid(_("no file in the form field 'file'"))
    except MultipartParseError:
        reader.close()
        path.unlink(missing_ok=True)
        raise Invalid(_("the multipart/form-data body is malformed")) from None
    except BaseException:
        reader.close()
        path.unlink(missing_ok=True)
        raise
    return Received(path=path, size=reader.size, detected=reader.detected, fields=reader.fields)
