"""Peak memory of ``broadcast serve`` (its VmHWM) under hostile requests and large photos.

Memory is not time: these assert how much the child process's high-water mark grew, which
does not depend on the machine's speed or load. Measured (docs/limits.md): before the limits
the hostile round cost the process +1.4 GB for the two JSON arrays alone and +572 MB per PNG.
"""

from __future__ import annotations

import io
import itertools
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from tests.support import ServiceProcess, auth, seed, service_env

MB = 1024 * 1024
# Room for what any request costs (buffers, a rendered error page, allocator slack); one
# 48 MB JSON array parsed into Python objects would be over 600 MB.
HOSTILE_GROWTH = 60 * MB
# One image decoded at a time: a 7070×7070 JPEG decodes at half scale, 3535² × 4 bytes (Pillow
# keeps RGB in 32 bits) = 50 MB, plus the scaling buffers (≈ 45 MB). Two decodes at once would
# need ≥ 190 MB; before this bound, each cost 573 MB.
DECODE_GROWTH = 130 * MB
TWILIO_ENV = {
    "BROADCAST_CHANNELS_ENABLED": "platform,webhook,sms",
    "BROADCAST_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "BROADCAST_TWILIO_AUTH_TOKEN": "t" * 32,
    "BROADCAST_TWILIO_FROM": "+3197010000000",
    "BROADCAST_TWILIO_API_URL": "http://127.0.0.1:9",
}


def peak_rss(service: ServiceProcess) -> int:
    """The child's high-water mark of resident memory, in bytes."""
    with open(f"/proc/{service.process.pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def photo(fmt: str, side: int = 7070) -> bytes:
    """A large, flat photo: a small file that decodes to ``side``² pixels."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(out, fmt)
    return out.getvalue()


def multipart(fields: dict[str, bytes], filename: str = "foto") -> tuple[bytes, str]:
    boundary = "memory-test-boundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        + (f'; filename="{filename}"'.encode() if name == "file" else b"")
        + b"\r\n\r\n"
        + value
        + b"\r\n"
        for name, value in fields.items()
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def chunked(data: bytes, size: int = 1 * MB):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def at_once(*calls):
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


@pytest.fixture
def service(database_url, receiver, tmp_path):
    token = seed(database_url, receiver.url, 0)
    env = service_env(database_url, BROADCAST_MEDIA_DIR=str(tmp_path / "media")) | TWILIO_ENV
    with (
        ServiceProcess(env, tmp_path) as running,
        httpx.Client(base_url=running.url, timeout=120) as http,
    ):
        headers = auth(token)
        incident = http.post(
            "/api/v1/incidents", headers=headers, json={"title": "Hoogwater", "severity": "info"}
        ).json()
        drafts = (
            http.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                headers=headers,
                json={"body": "Foto's van de Kerkstraat", "draft": True},
            ).json()["id"]
            for _ in itertools.count()
        )
        yield running, http, headers, incident, drafts


def upload(http, headers, update_id: int, data: bytes) -> httpx.Response:
    body, content_type = multipart({"file": data, "alt": b"Kerkstraat"})
    return http.post(
        f"/api/v1/updates/{update_id}/media",
        content=body,
        headers=headers | {"Content-Type": content_type},
    )


def test_hostile_requests_leave_the_peak_memory_of_the_service_alone(service):
    running, http, headers, incident, drafts = service
    json_array = b"[" + b"0," * (24 * MB) + b"0]"  # 48 MB
    question, question_type = multipart({"question": b"Is de dijk veilig? " * (MB + 50_000)})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    hundred = b"Body=" + b"a" * (100 * MB)
    png = photo("PNG")
    anonymous_json = {"Content-Type": "application/json"}
    update_id = next(drafts)

    def post(path, content, headers) -> int:
        return http.post(path, content=content, headers=headers).status_code

    # Warm up: every kind of request once, small, so that what they load is not counted.
    assert upload(http, headers, update_id, photo("PNG", 64)).status_code == 201
    assert post("/api/v1/incidents", b"[0]", anonymous_json) == 401
    assert post("/console/login", b"username=a&password=b", form) == 403  # no form token
    before = peak_rss(running)

    assert at_once(
        lambda: post("/api/v1/incidents", json_array, anonymous_json),
        lambda: post("/api/v1/incidents", chunked(json_array), anonymous_json),
    ) == [413, 413]
    path = f"/incidents/{incident['slug']}/questions"
    for _ in range(5):
        assert post(path, question, {"Content-Type": question_type}) == 413
        assert post(path, chunked(question), {"Content-Type": question_type}) == 413
    for path in ("/webhooks/twilio/sms", "/console/login"):
        assert post(path, hundred, form) == 413
        assert post(path, chunked(hundred), form) == 413
    refused = at_once(*[lambda: upload(http, headers, update_id, png)] * 2)
    assert [r.status_code for r in refused] == [413, 413]
    assert "megapixels" in refused[0].json()["detail"]

    growth = peak_rss(running) - before
    assert growth < HOSTILE_GROWTH, f"peak memory grew by {growth / MB:.0f} MB"
    assert http.get("/healthz").status_code == 200


def test_concurrent_large_photos_are_decoded_one_at_a_time(service):
    running, http, headers, _incident, drafts = service
    jpeg = photo("JPEG")
    first, second = next(drafts), next(drafts)
    assert upload(http, headers, first, photo("JPEG", 64)).status_code == 201  # warm up
    before = peak_rss(running)

    done = at_once(
        lambda: upload(http, headers, first, jpeg), lambda: upload(http, headers, second, jpeg)
    )

    assert [r.status_code for r in done] == [201, 201], [r.text[:200] for r in done]
    assert all(r.json()["width"] == 2048 for r in done)
    growth = peak_rss(running) - before
    assert growth < DECODE_GROWTH, f"peak memory grew by {growth / MB:.0f} MB"
