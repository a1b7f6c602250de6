"""Uploading photos and videos to updates: what is accepted, what is stripped, who may."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from broadcast.audit import AuditEvent
from broadcast.media.files import strip_webm
from tests.media.conftest import (
    LOCATION,
    RECORDED_AT,
    TITLE,
    image_bytes,
    jpeg_with_gps,
    mp4_with_location,
    noisy_png,
    token_for,
    upload,
    webm_header,
)
from tests.support import auth, new_incident, post_update


def stored_file(client, item: dict) -> bytes:
    return (client.app.state.settings.media_dir / item["url"].rsplit("/", 1)[1]).read_bytes()


def media_files(client) -> list[str]:
    directory = client.app.state.settings.media_dir
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- images: metadata ----------------------------------------------------------------------------


def test_a_photo_is_stored_without_location_or_camera_metadata(client, officer, draft):
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as before:  # the test image really carries them
        assert before.getexif().get_ifd(0x8825)  # GPS IFD
        assert b"Canon" in original and b"SecretXMPLocation" in original

    response = upload(client, officer, draft["id"], original)

    assert response.status_code == 201, response.text
    item = response.json()
    assert item["kind"] == "image" and item["content_type"] == "image/jpeg"
    assert item["alt"] == {"nl": "Ondergelopen Kerkstraat"}
    assert item["url"].startswith("http://127.0.0.1:8000/media/")
    assert "foto" not in item["url"]  # never the uploader's file name
    data = stored_file(client, item)
    assert item["size"] == len(data)
    with Image.open(io.BytesIO(data)) as after:
        assert dict(after.getexif()) == {}
        assert after.getexif().get_ifd(0x8825) == {}
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(after.info)
    for secret in (b"Canon", b"EOS", b"SN0123456789", b"Kerkstraat", b"SecretXMP", b"Exif"):
        assert secret not in data


def test_the_exif_orientation_is_applied_before_it_is_dropped(client, officer, draft):
    response = upload(client, officer, draft["id"], jpeg_with_gps(size=(300, 200), orientation=6))

    item = response.json()
    assert (item["width"], item["height"]) == (200, 300)  # turned upright, as the phone showed it
    with Image.open(io.BytesIO(stored_file(client, item))) as after:
        assert after.size == (200, 300)
        # The blue band at the original's top left is now at the top right (rotated 90° cw).
        assert after.getpixel((190, 10))[2] > 150 and after.getpixel((10, 10))[0] > 150


def test_large_photos_are_scaled_down_to_the_longest_side(app_factory):
    with TestClient(app_factory(media_max_image_side=256)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        response = upload(
            client,
            officer,
            update["id"],
            image_bytes("PNG", size=(1000, 500)),
            filename="kaart.png",
            content_type="image/png",
        )
        assert response.status_code == 201, response.text
        assert (response.json()["width"], response.json()["height"]) == (256, 128)


def test_past_the_decoding_limit_a_jpeg_is_decoded_smaller_and_a_png_is_refused(app_factory):
    """A JPEG is decoded at a reduced scale (2000×1000 at a quarter: 500×250), so it passes a
    limit its full size would not; PNG has no such scale and is refused before decoding."""
    limits = {"media_max_image_side": 256, "media_max_decoded_pixels": 600 * 600}
    with TestClient(app_factory(**limits)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        jpeg = image_bytes("JPEG", size=(2000, 1000))
        png = image_bytes("PNG", size=(2000, 1000))

        accepted = upload(client, officer, update["id"], jpeg)
        refused = upload(client, officer, update["id"], png, content_type="image/png")

        assert accepted.status_code == 201, accepted.text
        assert (accepted.json()["width"], accepted.json()["height"]) == (256, 128)
        assert refused.status_code == 413
        assert "2000×1000 pixels" in refused.json()["detail"]
        assert len(media_files(client)) == 1


@pytest.mark.parametrize(("transparency", "mode"), [(0, "RGBA"), (None, "RGB")])
def test_palette_images_are_scaled_in_colour(app_factory, transparency, mode):
    with TestClient(app_factory(media_max_image_side=100)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        palette = Image.new("RGB", (400, 200), (200, 30, 30)).convert("P")
        out = io.BytesIO()
        palette.save(out, "PNG", **({"transparency": transparency} if transparency == 0 else {}))

        response = upload(client, officer, update["id"], out.getvalue(), content_type="image/png")

        assert response.status_code == 201, response.text
        with Image.open(io.BytesIO(stored_file(client, response.json()))) as stored:
            assert (stored.size, stored.mode) == ((100, 50), mode)


@pytest.mark.parametrize(
    ("fmt", "mode", "expected"),
    [
        ("WEBP", "RGB", "image/jpeg"),
        ("PNG", "RGB", "image/png"),
        ("WEBP", "RGBA", "image/png"),
        ("PNG", "RGBA", "image/png"),
    ],
)
def test_webp_becomes_jpeg_and_transparency_stays_png(client, officer, draft, fmt, mode, expected):
    response = upload(
        client,
        officer,
        draft["id"],
        image_bytes(fmt, mode=mode),
        filename="x.webp",
        content_type="application/octet-stream",
    )

    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == expected
    with Image.open(io.BytesIO(stored_file(client, response.json()))) as stored:
        assert stored.format == expected.split("/")[1].upper()


# --- what is refused ----------------------------------------------------------------------------

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(200)
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>" + bytes(100)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' + bytes(100)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
MATROSKA = webm_header(b"matroska")


@pytest.mark.parametrize(
    "data",
    [PDF, HTML, SVG, HEIC, MATROSKA, b""],
    ids=["pdf", "html", "svg", "heic", "mkv", "empty"],
)
def test_the_type_is_read_from_the_content_not_the_name(client, officer, draft, data):
    response = upload(
        client, officer, draft["id"], data, filename="foto.jpg", content_type="image/jpeg"
    )

    assert response.status_code == 415, response.text
    assert "JPEG, PNG or WebP" in response.json()["detail"]
    assert media_files(client) == []


def test_a_truncated_jpeg_is_refused(client, officer, draft):
    response = upload(client, officer, draft["id"], jpeg_with_gps()[:300])

    assert response.status_code == 422
    assert "cannot be read" in response.json()["detail"]
    assert media_files(client) == []


def test_an_oversized_photo_is_refused_with_413(app_factory):
    with TestClient(app_factory(media_max_image_bytes=100_000)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        data = noisy_png((250, 250))  # ~190 kB
        assert len(data) > 100_000

        response = upload(client, officer, update["id"], data, content_type="image/png")

        assert response.status_code == 413
        assert "image is larger than" in response.json()["detail"]
        assert media_files(client) == []  # nothing half-written is left behind


def test_a_declared_body_over_every_limit_is_refused_before_it_is_read(client, officer, draft):
    response = client.post(
        f"/api/v1/updates/{draft['id']}/media",
        content=b"x" * 10,
        headers=auth(officer)
        | {"Content-Type": "multipart/form-data; boundary=abc", "Content-Length": str(200 << 20)},
    )
    assert response.status_code == 413


def test_an_update_takes_at_most_the_configured_number_of_items(app_factory):
    with TestClient(app_factory(media_max_items=2)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        for _ in range(2):
            assert upload(client, officer, update["id"], jpeg_with_gps()).status_code == 201

        response = upload(client, officer, update["id"], jpeg_with_gps())

        assert response.status_code == 409
        assert "at most 2" in response.json()["detail"]
        assert len(media_files(client)) == 2


def test_an_alt_text_is_required(client, officer, draft):
    response = upload(client, officer, draft["id"], jpeg_with_gps(), alt=None)

    assert response.status_code == 422
    assert "alt" in response.json()["detail"]
    assert media_files(client) == []


def test_alt_texts_in_both_languages(client, officer, draft):
    response = upload(
        client,
        officer,
        draft["id"],
        jpeg_with_gps(),
        alt="Straat onder water",
        alt_en="Street under water",
    )

    assert response.json()["alt"] == {"nl": "Straat onder water", "en": "Street under water"}


def test_a_published_update_takes_no_more_media(client, officer, incident):
    update = post_update(client, officer, incident["id"])
    assert update["state"] == "published"

    response = upload(client, officer, update["id"], jpeg_with_gps())

    assert response.status_code == 409
    assert "draft" in response.json()["detail"]


def test_an_unknown_update_is_404(client, officer):
    assert upload(client, officer, 999, jpeg_with_gps()).status_code == 404


# --- who may -------------------------------------------------------------------------------------


def test_anonymous_callers_cannot_upload(client, draft):
    response = upload(client, None, draft["id"], jpeg_with_gps())

    assert response.status_code == 401
    assert media_files(client) == []


def test_a_volunteer_adds_photos_to_their_own_proposal(client, volunteer, incident):
    proposal = post_update(client, volunteer, incident["id"], body="Dijk bij Plasmolen lekt.")
    assert proposal["state"] == "pending_approval"

    response = upload(client, volunteer, proposal["id"], jpeg_with_gps())

    assert response.status_code == 201, response.text


def test_a_volunteer_cannot_add_to_someone_elses_update(client, volunteer, officer, incident):
    other = token_for(client.app, "volunteer", "wim")
    proposal = post_update(client, other, incident["id"], body="Zandzakken op.")
    draft = post_update(client, officer, incident["id"], draft=True)

    for update in (proposal, draft):
        response = upload(client, volunteer, update["id"], jpeg_with_gps())
        assert response.status_code == 403, response.text
    assert media_files(client) == []


def test_a_volunteer_cannot_add_after_the_decision(client, volunteer, officer, incident):
    proposal = post_update(client, volunteer, incident["id"], body="Dijk lekt.")
    client.post(f"/api/v1/updates/{proposal['id']}/reject", headers=auth(officer))

    assert upload(client, volunteer, proposal["id"], jpeg_with_gps()).status_code == 409


def test_every_upload_is_audited(client, officer, draft):
    item = upload(client, officer, draft["id"], jpeg_with_gps()).json()

    with client.app.state.db.session_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "media.add")).all()
    assert [(e.actor, e.subject, e.detail["media"]) for e in events] == [
        ("olga", f"update:{draft['id']}", item["id"])
    ]


# --- videos --------------------------------------------------------------------------------------


def test_an_mp4_keeps_its_layout_but_loses_its_location(client, officer, draft):
    original = mp4_with_location()
    assert LOCATION in original and b"Pixel7" in original

    response = upload(
        client, officer, draft["id"], original, filename="clip.mov", content_type="video/quicktime"
    )

    assert response.status_code == 201, response.text
    item = response.json()
    assert (item["kind"], item["content_type"], item["width"]) == ("video", "video/mp4", None)
    data = stored_file(client, item)
    assert len(data) == len(original)  # every offset (stco) still points at the same bytes
    assert LOCATION not in data and b"Pixel7" not in data and b"camera0" not in data
    assert data.count(b"free") == 2  # moov/udta and moov/trak/udta
    assert data[:32] == original[:32] and data.endswith(b"frames-go-here..")


def test_a_webm_video_is_accepted(client, officer, draft):
    response = upload(
        client, officer, draft["id"], webm_header(), filename="clip.webm", content_type="video/webm"
    )

    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "video/webm"


def test_a_webm_keeps_its_layout_but_loses_its_title_and_tags(client, officer, draft, tmp_path):
    original = webm_header(metadata=True)
    assert TITLE in original and RECORDED_AT in original

    response = upload(
        client, officer, draft["id"], original, filename="clip.webm", content_type="video/webm"
    )

    assert response.status_code == 201, response.text
    data = stored_file(client, response.json())
    assert len(data) == len(original)
    assert TITLE not in data and RECORDED_AT not in data and b"RECORDING_LOCATION" not in data
    assert b"Chrome" in data and data.count(b"vp8-frame") == 20  # the rest is untouched
    title_at = original.index(TITLE) - 3  # id (2 bytes) and size (1) before the text
    assert data[title_at] == 0xEC  # a Void element where the Title was, as long as it was
    stored = tmp_path / "stored.webm"
    stored.write_bytes(data)
    assert strip_webm(stored) == 0  # nothing left to clear


def test_a_damaged_webm_is_refused(client, officer, draft):
    damaged = webm_header(metadata=True)[:-5]  # the Tags claim more bytes than there are

    response = upload(
        client, officer, draft["id"], damaged, filename="clip.webm", content_type="video/webm"
    )

    assert response.status_code == 422
    assert "WebM" in response.json()["detail"]


def test_a_broken_mp4_is_refused(client, officer, draft):
    broken = mp4_with_location()[:60]  # the moov box claims more bytes than there are

    response = upload(client, officer, draft["id"], broken, content_type="video/mp4")

    assert response.status_code == 422
    assert media_files(client) == []


def test_videos_have_their_own_size_limit(app_factory):
    with TestClient(app_factory(media_max_video_bytes=1000, media_max_image_bytes=10**6)) as client:
        officer = token_for(client.app, "officer", "olga")
        update = post_update(client, officer, new_incident(client, officer)["id"], draft=True)
        video = mp4_with_location() + bytes(2000)

        response = upload(client, officer, update["id"], video, content_type="video/mp4")

        assert response.status_code == 413
        assert "video" in response.json()["detail"]
