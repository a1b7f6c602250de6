"""The upload reader stops reading the request as soon as the file is over its limit, even
when the client declared no length (chunked transfer)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from broadcast.errors import Invalid, TooLarge, UnsupportedType
from broadcast.media.models import MediaKind
from broadcast.media.upload import receive
from tests.media.conftest import jpeg_with_gps

BOUNDARY = b"grens"
CHUNK = 64 * 1024


def streaming_request(chunks, *, length: int | None = None):
    """A request whose body arrives chunk by chunk; ``pulled`` counts what was read."""
    pulled = []
    source = iter(chunks)

    async def next_message():
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    headers = [(b"content-type", b"multipart/form-data; boundary=" + BOUNDARY)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, next_message), pulled


def body(data_chunks, *, fields=(("alt", b"Dijk"),)):
    for name, value in fields:
        yield (
            b"--"
            + BOUNDARY
            + b'\r\nContent-Disposition: form-data; name="'
            + name.encode()
            + b'"\r\n\r\n'
            + value
            + b"\r\n"
        )
    yield (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    yield from data_chunks
    yield b"\r\n--" + BOUNDARY + b"--\r\n"


def limits(detected) -> int:
    return 200_000 if detected.kind == MediaKind.image else 10_000_000


async def test_an_endless_upload_is_cut_off_at_the_limit(tmp_path):
    def endless():
        yield jpeg_with_gps()
        while True:
            yield bytes(CHUNK)

    request, pulled = streaming_request(body(endless()))

    with pytest.raises(TooLarge, match="image is larger than"):
        await receive(request, tmp_path, limit_for=limits, largest=10_000_000)

    assert sum(pulled) < 200_000 + 2 * CHUNK  # read up to the limit and not much further
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


async def test_the_type_is_refused_from_the_first_bytes(tmp_path):
    def endless_pdf():
        yield b"%PDF-1.7\n" + bytes(100)
        while True:
            yield bytes(CHUNK)

    request, pulled = streaming_request(body(endless_pdf()))

    with pytest.raises(UnsupportedType):
        await receive(request, tmp_path, limit_for=limits, largest=10_000_000)
    assert sum(pulled) < 2 * CHUNK
    assert list(tmp_path.iterdir()) == []


async def test_a_file_within_the_limit_is_received_with_its_fields(tmp_path):
    photo = jpeg_with_gps()
    request, _ = streaming_request(body([photo[:100], photo[100:]]))

    received = await receive(request, tmp_path, limit_for=limits, largest=10_000_000)

    assert received.path.read_bytes() == photo
    assert (received.size, received.detected.content_type) == (len(photo), "image/jpeg")
    assert received.fields == {"alt": "Dijk"}


async def test_two_files_are_refused(tmp_path):
    photo = jpeg_with_gps()
    second = (
        b"\r\n--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="b.jpg"\r\n\r\n' + photo
    )
    request, _ = streaming_request(body([photo, second]))

    with pytest.raises(Invalid):
        await receive(request, tmp_path, limit_for=limits, largest=10_000_000)


async def test_a_body_that_is_not_multipart_is_refused(tmp_path):
    request, _ = streaming_request([b"{}"])
    request.scope["headers"] = [(b"content-type", b"application/json")]

    with pytest.raises(Invalid, match="multipart"):
        await receive(request, tmp_path, limit_for=limits, largest=10_000_000)
