"""Photos and videos on the public timeline: shown with their alt text once published, never
before."""

from __future__ import annotations

import re

from tests.media.conftest import jpeg_with_gps, mp4_with_location, upload
from tests.support import auth, post_update


def test_the_timeline_card_shows_a_published_photo_with_its_alt_text(client, officer, incident):
    draft = post_update(client, officer, incident["id"], body="Kerkstraat onder water.", draft=True)
    photo = upload(
        client,
        officer,
        draft["id"],
        jpeg_with_gps(),
        alt="Straat onder water",
        alt_en="Street under water",
    ).json()
    video = upload(
        client,
        officer,
        draft["id"],
        mp4_with_location(),
        alt="Filmpje van de dijk",
        content_type="video/mp4",
    ).json()
    page = client.get(f"/incidents/{incident['slug']}").text
    assert "/media/" not in page  # a draft is not on the public page, nor are its media

    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    page = client.get(f"/incidents/{incident['slug']}").text

    name = photo["url"].rsplit("/", 1)[1]
    img = re.search(r'<img [^>]*src="/media/' + re.escape(name) + '"[^>]*>', page).group(0)
    assert 'alt="Straat onder water"' in img and 'loading="lazy"' in img
    assert f'width="{photo["width"]}"' in img and f'height="{photo["height"]}"' in img
    video_name = video["url"].rsplit("/", 1)[1]
    assert f'<video controls preload="none" src="/media/{video_name}"' in page
    english = client.get(f"/incidents/{incident['slug']}?lang=en").text
    assert 'alt="Street under water"' in english
    assert f'src="/media/{name}"' in client.get("/").text  # the status page shows the latest


def test_alt_text_is_escaped(client, officer, incident):
    draft = post_update(client, officer, incident["id"], draft=True)
    upload(client, officer, draft["id"], jpeg_with_gps(), alt='"><script>alert(1)</script>')
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))

    page = client.get(f"/incidents/{incident['slug']}").text

    assert "<script>alert(1)" not in page
    assert "&#34;&gt;&lt;script&gt;" in page


def test_a_retracted_updates_photo_leaves_the_timeline(client, officer, incident):
    draft = post_update(client, officer, incident["id"], draft=True)
    upload(client, officer, draft["id"], jpeg_with_gps())
    client.post(f"/api/v1/updates/{draft['id']}/approve", headers=auth(officer))
    assert "/media/" in client.get(f"/incidents/{incident['slug']}").text

    client.post(
        f"/api/v1/updates/{draft['id']}/retract",
        json={"reason": "Verkeerde foto"},
        headers=auth(officer),
    )

    assert "/media/" not in client.get(f"/incidents/{incident['slug']}").text
