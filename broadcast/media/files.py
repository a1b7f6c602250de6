"""What an uploaded file really is, and making it safe to show.

The type is decided by the file's first bytes, never by its name or the client's Content-Type.
Images are decoded and re-encoded with Pillow: EXIF orientation applied first, then a fresh image
built from the pixels alone, so EXIF (GPS, camera, serial numbers), XMP, IPTC, comments and ICC
profiles (converted to sRGB first) are gone. MP4 videos keep their pixels and layout; their
metadata boxes (``udta``, ``meta``: where Android and cameras keep ©xyz location, make and model;
XMP in ``uuid`` boxes) are overwritten with zeros in place and renamed ``free``, which keeps every
offset valid. WebM is checked by its EBML header but not rewritten (see docs/media.md).
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from broadcast.errors import Invalid, TooLarge, UnsupportedType
from broadcast.i18n import _
from broadcast.media.models import MediaKind

log = logging.getLogger(__name__)

SNIFF_BYTES = 64  # enough for every signature below
ACCEPTED = "JPEG, PNG or WebP photos and MP4 or WebM videos"
# ISO base media brands that are MP4 video; HEIC/AVIF photos and QuickTime use other brands.
MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash",
    b"M4V ", b"mmp4", b"MSNV",
}  # fmt: skip
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Detected:
    kind: MediaKind
    content_type: str
    extension: str


@dataclass
class Received:
    """One uploaded file as received (``media.upload``), before it is checked and cleaned."""

    path: Path  # the file part, as sent; the caller removes it
    size: int
    detected: Detected
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cleaned:
    kind: MediaKind
    content_type: str
    extension: str
    width: int | None = None
    height: int | None = None


def sniff(head: bytes) -> Detected | None:
    """The type of a file from its first bytes; None when it is none of the accepted ones."""
    if head.startswith(b"\xff\xd8\xff"):
        return Detected(MediaKind.image, "image/jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Detected(MediaKind.image, "image/png", "png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Detected(MediaKind.image, "image/webp", "webp")
    if head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS:
        return Detected(MediaKind.video, "video/mp4", "mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3") and _ebml_doctype(head) == b"webm":
        return Detected(MediaKind.video, "video/webm", "webm")
    return None


# --- images ------------------------------------------------------------------------------------

# Decoding is where an image costs memory: width × height × 4 bytes, however small the file
# (measured: about 95 MB for a 50-megapixel JPEG, docs/limits.md). One image at a time per
# process, so concurrent uploads wait for their turn instead of adding up.
_one_image_at_a_time = threading.Lock()


def clean_image(
    source: Path,
    target: Path,
    detected: Detected,
    *,
    max_side: int,
    max_pixels: int,
    max_decoded_pixels: int,
) -> Cleaned:
    """Decode ``source``, write a metadata-free re-encoding to ``target``. JPEG stays JPEG, PNG
    stays PNG; WebP becomes JPEG (PNG when it has transparency), which every channel takes."""
    with _one_image_at_a_time:
        return _clean_image(source, target, detected, max_side, max_pixels, max_decoded_pixels)


def _clean_image(source, target, detected, max_side, max_pixels, max_decoded_pixels) -> Cleaned:
    image = _decode(source, detected, max_side, max_pixels, max_decoded_pixels)
    image = _to_srgb(image)
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if alpha else ("L" if image.mode in ("1", "L") else "RGB"))
    # A new image from the pixels alone: nothing of the original's info (EXIF, XMP, comments,
    # ICC, DPI) can travel along to the encoder.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    if alpha or detected.content_type == "image/png":
        clean.save(target, "PNG")
        content_type, extension = "image/png", "png"
    else:
        clean.save(target, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        content_type, extension = "image/jpeg", "jpg"
    return Cleaned(MediaKind.image, content_type, extension, clean.width, clean.height)


_RESAMPLED_MODES = ("L", "LA", "RGB", "RGBA", "CMYK")  # resized well as they are


def _decode(
    source: Path, detected: Detected, max_side: int, max_pixels: int, max_decoded_pixels: int
) -> Image.Image:
    """The image scaled down to ``max_side`` and turned upright. Its size is checked before
    anything is decoded; a JPEG is decoded at a reduced scale (libjpeg's DCT scaling, to less
    than twice the target size), PNG and WebP at full size, so those have the lower limit."""
    try:
        with Image.open(source, formats=[_PILLOW_FORMATS[detected.content_type]]) as opened:
            _check_pixels(opened.size, max_pixels)
            opened.draft(None, _fitted(opened.size, max_side))  # JPEG only; others ignore it
            _check_pixels(opened.size, max_decoded_pixels)
            opened.load()
            image: Image.Image = opened
            if image.mode not in _RESAMPLED_MODES:  # palette, 1-bit, 16-bit
                image = image.convert("RGBA" if image.has_transparency_data else "RGB")
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # in place
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Invalid(
            _("the file looks like %(type)s but cannot be read"), type=detected.content_type
        ) from None


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled to fit a square of ``max_side`` (never up)."""
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _check_pixels(size: tuple[int, int], most: int) -> None:
    width, height = size
    if width * height > most:
        raise TooLarge(
            _(
                "the image has %(width)s×%(height)s pixels; "
                "at most %(most)s megapixels are accepted"
            ),
            width=width,
            height=height,
            most=f"{most / 1_000_000:.3g}",
        )


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert colours from an embedded ICC profile to sRGB, so dropping the profile keeps them;
    a CMYK image without a usable profile is converted naively."""
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            from PIL import ImageCms

            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if image.mode == "RGBA" else "RGB",
            )
            assert converted is not None  # None only when converting in place
            return converted
        except (ImportError, OSError, ValueError, TypeError) as exc:  # PyCMSError is an OSError
            log.info("ICC profile not applied: %s", type(exc).__name__)
    return image


# --- videos ------------------------------------------------------------------------------------


def check_video(path: Path, detected: Detected) -> Cleaned:
    if detected.content_type == "video/mp4":
        strip_mp4(path)
    else:
        _check_webm(path)
        strip_webm(path)
    return Cleaned(MediaKind.video, detected.content_type, detected.extension)


_MP4_METADATA = {b"udta", b"meta"}
_MP4_DESCEND = {b"moov", b"trak"}


def strip_mp4(path: Path) -> int:
    """Zero the metadata boxes of an MP4 in place and rename them ``free``; every other byte
    and offset stays as it was. Returns how many boxes were cleared. Refuses files whose box
    structure does not add up or that have no ``moov``."""
    cleared = 0
    with path.open("r+b") as handle:
        end = handle.seek(0, io.SEEK_END)
        top = list(_mp4_boxes(handle, 0, end))
        if not top or top[0][0] != b"ftyp" or not any(box[0] == b"moov" for box in top):
            raise Invalid(_("the MP4 file has no movie header (moov); it cannot be played"))
        pending = [(box, 0) for box in top]
        while pending:
            (kind, start, payload, stop), depth = pending.pop()
            is_xmp = kind == b"uuid" and _read_at(handle, payload, 16) == XMP_UUID
            if kind in _MP4_METADATA or is_xmp:
                _wipe(handle, start, payload, stop)
                cleared += 1
            elif kind in _MP4_DESCEND and depth < 2:
                pending += [(box, depth + 1) for box in _mp4_boxes(handle, payload, stop)]
    return cleared


def _mp4_boxes(handle, start: int, end: int):
    position = start
    while position + 8 <= end:
        header = _read_at(handle, position, 8)
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        payload = position + 8
        if size == 1:
            size, payload = int.from_bytes(_read_at(handle, position + 8, 8), "big"), position + 16
        elif size == 0:
            size = end - position
        if size < payload - position or position + size > end:
            raise Invalid(_("the MP4 file is damaged (a box runs past its end)"))
        yield kind, position, payload, position + size
        position += size


def _wipe(handle, start: int, payload: int, stop: int) -> None:
    handle.seek(start + 4)
    handle.write(b"free")
    handle.seek(payload)
    remaining = stop - payload
    while remaining:
        chunk = min(remaining, 1 << 16)
        handle.write(bytes(chunk))
        remaining -= chunk


def _read_at(handle, position: int, count: int) -> bytes:
    handle.seek(position)
    return handle.read(count)


def _check_webm(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if _ebml_doctype(head) != b"webm":
        raise UnsupportedType(_("not a WebM video; accepted are %(accepted)s"), accepted=ACCEPTED)


# Matroska/WebM element ids (https://www.matroska.org/technical/elements.html)
_SEGMENT, _CLUSTER, _INFO, _VOID = 0x18538067, 0x1F43B675, 0x1549A966, 0xEC
_SEGMENT_CHILDREN = {  # level 1: what ends a Cluster of unknown size (a live recording's)
    0x114D9B74, _INFO, 0x1654AE6B, _CLUSTER, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367,
}  # fmt: skip
_WEBM_METADATA = {
    0x1254C367,  # Tags: anything, e.g. RECORDING_LOCATION, DATE_RECORDED, the device
    0x1941A469,  # Attachments: files carried along (a cover picture with its own EXIF)
}
_INFO_METADATA = {0x7BA9}  # Info/Title: often a name


def strip_webm(path: Path) -> int:
    """Turn a WebM's metadata elements into Void elements of the same length, in place, their
    bytes zeroed; every other byte and offset stays as it was. Returns how many were cleared.
    Refuses files whose element structure does not add up."""
    cleared = 0
    with path.open("r+b") as handle:
        end = handle.seek(0, io.SEEK_END)
        for element, _start, payload, stop in _ebml_elements(handle, 0, end):
            if element == _SEGMENT:
                cleared += _strip_segment(handle, payload, stop)
    return cleared


def _strip_segment(handle, start: int, end: int) -> int:
    wiped = []
    for child, child_start, child_payload, child_stop in _ebml_elements(handle, start, end):
        if child in _WEBM_METADATA:
            wiped.append((child_start, child_stop))
        elif child == _INFO:
            info = _ebml_elements(handle, child_payload, child_stop)
            wiped += [(at, stop) for kind, at, _, stop in info if kind in _INFO_METADATA]
    for at, stop in wiped:
        _void(handle, at, stop)
    return len(wiped)


def _ebml_elements(handle, start: int, end: int):
    """(id, start, payload start, stop) of the elements between ``start`` and ``end``. An
    unknown size runs to ``end``, except a Cluster's, which ends where the next level-1
    element begins."""
    position = start
    while position < end:
        head = _read_at(handle, position, 12)
        try:
            element, id_width = _ebml_id(head)
            size, size_width = _vint(head, id_width)
        except IndexError:
            raise Invalid(_("the WebM file is damaged (an element cannot be read)")) from None
        payload = position + id_width + size_width
        if size == (1 << (7 * size_width)) - 1:  # all ones: unknown size
            stop = _cluster_end(handle, payload, end) if element == _CLUSTER else end
        else:
            stop = payload + size
        if stop > end:
            raise Invalid(_("the WebM file is damaged (an element runs past its end)"))
        yield element, position, payload, stop
        position = stop


def _cluster_end(handle, payload: int, end: int) -> int:
    for element, start, _payload, _stop in _ebml_elements(handle, payload, end):
        if element in _SEGMENT_CHILDREN:
            return start
    return end


def _ebml_id(data: bytes) -> tuple[int, int]:
    """An element id keeps its length marker: 0x1A45DFA3, 0xEC."""
    width = next((i + 1 for i in range(4) if data[0] & (0x80 >> i)), 0)
    if not width or len(data) < width:
        raise IndexError("invalid EBML id")
    return int.from_bytes(data[:width], "big"), width


def _void(handle, start: int, stop: int) -> None:
    """Overwrite an element with a Void element of exactly the same length."""
    width = min(8, stop - start - 1)  # the size field; the rest of the length is payload
    size = stop - start - 1 - width
    handle.seek(start)
    handle.write(bytes([_VOID]) + (size | (1 << (7 * width))).to_bytes(width, "big"))
    remaining = size
    while remaining:
        chunk = min(remaining, 1 << 16)
        handle.write(bytes(chunk))
        remaining -= chunk


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType of an EBML header ("webm", "matroska"), read from the first bytes."""
    try:
        size, width = _vint(head, 4)
        position, end = 4 + width, min(len(head), 4 + width + size)
        while position < end:
            element = head[position : position + 2]
            length, width = _vint(head, position + 2)
            value = position + 2 + width
            if element == b"\x42\x82":
                return head[value : value + length]
            position = value + length
    except IndexError:
        return None
    return None


def _vint(data: bytes, position: int) -> tuple[int, int]:
    """An EBML variable-length integer: (value, width in bytes)."""
    first = data[position]
    width = next((i + 1 for i in range(8) if first & (0x80 >> i)), 0)
    if not width:
        raise IndexError("invalid EBML length")
    value = first & (0xFF >> width)
    for byte in data[position + 1 : position + width]:
        value = (value << 8) | byte
    if position + width > len(data):
        raise IndexError("truncated EBML length")
    return value, width
