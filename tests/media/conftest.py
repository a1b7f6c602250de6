"""Builders for the media tests: real image files made with Pillow (one carrying GPS and camera
EXIF), minimal MP4 and WebM containers, and an upload helper."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from broadcast.auth.models import Role
from broadcast.auth.service import add_user
from tests.support import auth, new_incident, post_update

GPS_LATITUDE = (51.0, 45.0, 12.5)  # Mook, roughly


def jpeg_with_gps(size=(300, 200), orientation: int = 6) -> bytes:
    """A JPEG as a phone writes it: GPS position, camera make and model, an orientation flag,
    a comment and XMP."""
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 220), (0, 0, size[0] // 2, size[1] // 4))  # to see the rotation
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS 5D Mark IV"
    exif[ExifTags.Base.BodySerialNumber] = "SN0123456789"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (5.0, 53.0, 1.0)
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>SecretXMPLocation</rdf:RDF></x:xmpmeta>'
    image.save(out, "JPEG", exif=exif, comment=b"taken at Kerkstraat 12", xmp=xmp)
    return out.getvalue()


def image_bytes(fmt: str, size=(120, 80), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (10, 120, 200, 128)[: len(mode)])
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def noisy_png(size=(400, 400)) -> bytes:
    """An image that does not compress: its size is roughly 3 bytes per pixel."""
    import random

    rng = random.Random(7)
    image = Image.frombytes(
        "RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


LOCATION = b"+51.7536+005.8836/"  # ISO 6709, as Android writes it into udta/©xyz


def mp4_with_location() -> bytes:
    ftyp = box(b"ftyp", b"isom" + (512).to_bytes(4, "big") + b"isomiso2avc1mp41")
    mvhd = box(b"mvhd", bytes(100))
    xyz = box(b"\xa9xyz", len(LOCATION).to_bytes(2, "big") + b"\x15\xc7" + LOCATION)
    make = box(b"\xa9mak", (6).to_bytes(2, "big") + b"\x15\xc7" + b"Pixel7")
    udta = box(b"udta", xyz + make)
    trak = box(b"trak", box(b"tkhd", bytes(84)) + box(b"udta", box(b"name", b"camera0")))
    moov = box(b"moov", mvhd + trak + udta)
    mdat = box(b"mdat", b"\x00\x00\x00\x10frames-go-here..")
    return ftyp + moov + mdat


def ebml(element: bytes, payload: bytes) -> bytes:
    """One EBML element: its id, its size (1 byte when it fits, else 8) and its payload."""
    if len(payload) < 127:
        return element + bytes([0x80 | len(payload)]) + payload
    return element + b"\x01" + len(payload).to_bytes(7) + payload


UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"  # a live recording's Segment and Clusters
TITLE, RECORDED_AT = b"Filmpje van Jan de Vries", b"+51.7536+005.8836/"


def webm_header(doctype: bytes = b"webm", *, metadata: bool = False) -> bytes:
    """A minimal WebM as a browser's MediaRecorder writes it (Segment and Cluster of unknown
    size); with ``metadata``, an Info/Title and, after the Cluster, Tags with a location."""
    fields = (
        b"\x42\x86\x81\x01"  # EBMLVersion 1
        b"\x42\xf7\x81\x01"  # EBMLReadVersion 1
        b"\x42\xf2\x81\x04"  # EBMLMaxIDLength 4
        b"\x42\xf3\x81\x08"  # EBMLMaxSizeLength 8
        + ebml(b"\x42\x82", doctype)
        + b"\x42\x87\x81\x04\x42\x85\x81\x02"
    )
    info = ebml(b"\x2a\xd7\xb1", (1_000_000).to_bytes(3)) + ebml(b"\x4d\x80", b"Chrome")
    if metadata:
        info += ebml(b"\x7b\xa9", TITLE)
    track = ebml(b"\xd7", b"\x01") + ebml(b"\x83", b"\x01") + ebml(b"\x86", b"V_VP8")
    cluster = ebml(b"\xe7", b"\x00") + ebml(b"\xa3", b"\x81\x00\x00\x80" + b"vp8-frame" * 20)
    segment = (
        ebml(b"\x15\x49\xa9\x66", info)
        + ebml(b"\x16\x54\xae\x6b", ebml(b"\xae", track))
        + b"\x1f\x43\xb6\x75"
        + UNKNOWN_SIZE
        + cluster
    )
    if metadata:
        tag = ebml(b"\x45\xa3", b"RECORDING_LOCATION") + ebml(b"\x44\x87", RECORDED_AT)
        segment += ebml(b"\x12\x54\xc3\x67", ebml(b"\x73\x73", ebml(b"\x67\xc8", tag)))
    return ebml(b"\x1a\x45\xdf\xa3", fields) + b"\x18\x53\x80\x67" + UNKNOWN_SIZE + segment


def upload(
    client,
    token: str | None,
    update_id: int,
    data: bytes,
    *,
    filename="foto.jpg",
    content_type="image/jpeg",
    alt: str | None = "Ondergelopen Kerkstraat",
    **fields,
):
    form = ({"alt": alt} if alt is not None else {}) | fields
    return client.post(
        f"/api/v1/updates/{update_id}/media",
        files={"file": (filename, data, content_type)},
        data=form,
        headers=auth(token) if token else {},
    )


def token_for(app, role: str, name: str, display_name: str = "") -> str:
    """A user's API token (no console password: argon2 would cost a third of a second)."""
    with app.state.db.session_scope() as session:
        _, token = add_user(session, name=name, role=Role(role), display_name=display_name)
    return token


@pytest.fixture
def officer(client) -> str:
    return token_for(client.app, "officer", "olga")


@pytest.fixture
def volunteer(client) -> str:
    return token_for(client.app, "volunteer", "vera", display_name="Vera Verbinder")


@pytest.fixture
def incident(client, officer) -> dict:
    return new_incident(client, officer)


@pytest.fixture
def draft(client, officer, incident) -> dict:
    return post_update(client, officer, incident["id"], draft=True)
