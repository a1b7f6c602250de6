"""Request body limits over real HTTP (the app under uvicorn): every kind of route refuses an
oversized body with 413 whether its size is declared or it arrives chunked, nothing is
stored, and no form leaves a spooled file open."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import func, select

from broadcast.questions.models import Question
from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from tests.fakes.server import FakeServer
from tests.support import auth, new_incident, post_update, token_for

MB = 1024 * 1024
TWILIO = {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32, "from": "+3197010000000"}
MEDIA_LIMITS = {"media_max_image_bytes": 200_000, "media_max_video_bytes": 300_000}


@pytest.fixture
def served(app_factory) -> Iterator[tuple[httpx.Client, dict]]:
    """The app with the SMS channel (its Twilio webhooks), served by uvicorn on 127.0.0.1."""
    app = app_factory(
        dispatch=False,
        channel_classes=[PlatformChannel, SmsChannel],
        channels={"sms": TWILIO | {"api_url": "http://127.0.0.1:9"}},
        **MEDIA_LIMITS,
    )
    with (
        FakeServer(app, lifespan="on") as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        officer = token_for(app, "officer")
        incident = new_incident(http, officer)
        draft = post_update(http, officer, incident["id"], draft=True)
        yield http, {"app": app, "officer": officer, "incident": incident, "draft": draft}


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length: Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def multipart(fields: dict[str, str], file: bytes | None = None) -> tuple[bytes, str]:
    boundary = "limits-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if file is not None:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        parts.append(head.encode() + b"Content-Type: image/png\r\n\r\n" + file + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def oversized(kind: str, state: dict) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of an oversized request to each kind of route."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    if kind == "anonymous API":
        return "/api/v1/incidents", b"[" + b"0," * MB + b"0]", {"Content-Type": "application/json"}
    if kind == "Twilio webhook":
        return "/webhooks/twilio/sms", b"Body=" + b"a" * MB, form
    if kind == "console login":
        return "/console/login", b"username=olga&password=" + b"a" * MB, form
    if kind == "public question form":
        body, content_type = multipart({"question": "Is de dijk veilig? " * 100_000})
        path = f"/incidents/{state['incident']['slug']}/questions"
        return path, body, {"Content-Type": content_type}
    assert kind == "media upload"
    body, content_type = multipart({"alt": "Kerkstraat"}, b"\x89PNG\r\n\x1a\n" + bytes(MB))
    headers = auth(state["officer"]) | {"Content-Type": content_type}
    return f"/api/v1/updates/{state['draft']['id']}/media", body, headers


KINDS = ["anonymous API", "Twilio webhook", "console login", "public question form", "media upload"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_oversized_body_is_refused_with_413_and_nothing_is_stored(served, kind, declared):
    http, state = served
    path, body, headers = oversized(kind, state)

    response = http.post(path, content=body if declared else chunked(body), headers=headers)

    assert response.status_code == 413, response.text[:300]
    if kind == "console login":  # a browser page: the console's error page, in Dutch
        assert response.headers["content-type"].startswith("text/html")
        assert "groter dan" in response.text
    elif kind != "media upload":  # the upload's own streaming check may answer first
        assert "request body is larger than" in response.json()["detail"]
    assert response.headers["content-security-policy"]  # inside the security headers
    with state["app"].state.db.session_scope() as session:
        assert session.exec(select(func.count()).select_from(Question)).one() == 0
    assert http.get("/healthz").status_code == 200  # and the service carries on


def test_the_largest_legitimate_update_fits_with_room_to_spare(served):
    """Two languages at their maximum length, every character an emoji escaped by the
    client (12 bytes each in JSON): under half of max_request_bytes."""
    http, state = served
    longest = "🌊" * 10_000  # MAX_BODY_CHARS
    body = json.dumps({"body": {"nl": longest, "en": longest}, "draft": True}).encode()
    assert 0.4 * 512 * 1024 < len(body) < 0.5 * 512 * 1024

    response = http.post(
        f"/api/v1/incidents/{state['incident']['id']}/updates",
        content=body,
        headers=auth(state["officer"]) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 201, response.text[:300]


def deleted_open_files() -> list[str]:
    """Files this process holds open whose name is gone: spooled uploads nobody closed."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith("(deleted)"):
            found.append(target)
    return found


def test_no_form_leaves_a_spooled_file_open(served):
    """Multipart posts with a 2 MB file part (Starlette spools parts over 1 MB to temporary
    files) to every form route: refused, and nothing stays open once they are answered."""
    http, state = served
    before = deleted_open_files()
    body, content_type = multipart({"question": "Dijk?", "phone": "0612345678"}, bytes(2 * MB))
    paths = [f"/incidents/{state['incident']['slug']}/questions", "/subscribe/sms"]
    statuses = set()
    for path in [*paths, "/subscribe/sms/confirm", "/console/login", "/webhooks/twilio/sms"]:
        for content in (body, chunked(body)):
            response = http.post(path, content=content, headers={"Content-Type": content_type})
            statuses.add(response.status_code)

    assert deleted_open_files() == before
    # A file part where none belongs (400; a form Twilio did not sign: 403), or over the limit.
    assert statuses == {400, 403, 413}


def test_a_page_form_with_a_file_is_refused_and_closed(served):
    """Under the size limit a form is parsed; a file part where none belongs is a 400."""
    http, state = served
    body, content_type = multipart({"question": "Is de dijk veilig?"}, bytes(100_000))
    path = f"/incidents/{state['incident']['slug']}/questions"

    response = http.post(path, content=body, headers={"Content-Type": content_type})

    assert response.status_code == 400
    assert "files" in response.json()["detail"]
    with state["app"].state.db.session_scope() as session:
        assert session.exec(select(func.count()).select_from(Question)).one() == 0


def test_each_kind_of_route_has_its_own_limit(served):
    """300 kB: within the API's 512 kB, over the webhooks' 256 kB; within the upload route's
    300 kB + 64 kB here (the upload's own checks then judge the file)."""
    http, state = served
    body = b"[" + b"0," * 150_000 + b"0]"
    json_type = {"Content-Type": "application/json"}

    assert http.post("/api/v1/incidents", content=body, headers=json_type).status_code == 401
    assert http.post("/webhooks/telegram", content=body, headers=json_type).status_code == 413
    upload, content_type = multipart({"alt": "Kerkstraat"}, bytes(300_000))
    response = http.post(
        f"/api/v1/updates/{state['draft']['id']}/media",
        content=upload,
        headers=auth(state["officer"]) | {"Content-Type": content_type},
    )
    assert response.status_code == 415  # read in full: not a photo, whatever its name says
