"""Signing in to the console under attack: login CSRF, forwarded headers, device cookies
against lock-outs behind one address, and the keyed hashes of what is counted."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from broadcast import keys, ratelimit
from broadcast.auth.throttle import WINDOW
from broadcast.db import Database
from broadcast.keys import InstallationKey
from broadcast.ratelimit import RateEvent
from broadcast.settings import Settings
from tests.support import (
    ORIGIN,
    PASSWORD,
    ServiceProcess,
    log_in,
    seed,
    service_env,
    token_for,
)

NAT = ("198.51.100.20", 50000)  # the town hall's one public address


def login_form_token(client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)[1]


def post_login(client, csrf: str | None, headers=ORIGIN, name: str = "lotte"):
    data = {"username": name, "password": PASSWORD, "next": "/console"}
    return client.post(
        "/console/login",
        data=data | ({"csrf": csrf} if csrf is not None else {}),
        headers=headers,
        follow_redirects=False,
    )


def test_a_login_from_another_site_sets_no_session(client):
    token_for(client.app, "officer", name="lotte")
    csrf = login_form_token(client)
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        refused = post_login(client, csrf, headers)
        assert refused.status_code == 403 and "bc_session" not in refused.cookies
    assert post_login(client, csrf).status_code == 303


def test_a_login_without_the_form_token_sets_no_session(client):
    token_for(client.app, "officer", name="lotte")
    refused = post_login(client, None)  # a forged form cannot know the browser's token
    assert refused.status_code == 403 and "bc_session" not in refused.cookies
    assert "Het formulier is verlopen" in refused.text
    assert post_login(client, "guessed-token").status_code == 403
    # The refusal hands out a fresh form: the officer just tries again.
    retry = re.search(r'name="csrf" value="([^"]+)"', refused.text)[1]
    assert post_login(client, retry).status_code == 303


def test_a_browser_that_signed_in_before_is_not_held_up_by_guessers_behind_its_address(client):
    token_for(client.app, "officer", name="lotte")
    colleague = TestClient(client.app, client=NAT)
    assert log_in(colleague, "lotte").status_code == 303  # yesterday: a device cookie
    assert "bc_device" in colleague.cookies

    guesser = TestClient(client.app, client=NAT)
    for n in range(20):
        assert log_in(guesser, f"medewerker{n}", "wrong").status_code == 401
    assert log_in(guesser, "lotte").status_code == 429  # untrusted behind that address: waits
    newcomer = TestClient(client.app, client=NAT)
    assert log_in(newcomer, "lotte").status_code == 429

    colleague.cookies.delete("bc_session")
    assert log_in(colleague, "lotte").status_code == 303  # trusted: signs in at once


def test_a_device_cookie_trusts_only_its_own_account_and_only_when_genuine(client):
    token_for(client.app, "officer", name="lotte")
    token_for(client.app, "officer", name="piet")
    browser = TestClient(client.app, client=NAT)
    assert log_in(browser, "lotte").status_code == 303
    genuine = browser.cookies["bc_device"]
    nonce, stamp, signature = genuine.split(".")
    forged = f"{nonce}.{stamp}.{'0' * len(signature)}"
    for cookie, account in ((genuine, "piet"), (forged, "lotte")):
        other = TestClient(client.app, client=NAT)
        other.cookies.set("bc_device", cookie, path="/console/login")
        for _ in range(5):
            assert log_in(other, account, "wrong").status_code == 401
        # Counted as untrusted, per account and address: the next try waits.
        assert log_in(other, account).status_code == 429


def test_wrong_passwords_from_a_trusted_browser_slow_that_browser_down(client):
    token_for(client.app, "officer", name="lotte")
    browser = TestClient(client.app, client=NAT)
    assert log_in(browser, "lotte").status_code == 303
    browser.cookies.delete("bc_session")
    for _ in range(5):
        assert log_in(browser, "lotte", "wrong").status_code == 401
    assert log_in(browser, "lotte").status_code == 429
    with client.app.state.db.session_scope() as session:
        kinds = {e.kind for e in session.exec(select(RateEvent))}
    assert kinds == {"login-device"}  # not the address: colleagues behind it are not affected
    assert log_in(TestClient(client.app, client=NAT), "lotte").status_code == 303


def test_counted_addresses_are_keyed_hashes_with_one_installation_key(app_factory, settings):
    """A plain SHA-256 of an IPv4 address is found again by hashing all 2^32 of them."""
    import hashlib

    with TestClient(app_factory(), client=NAT) as client:
        log_in(client, "lotte", "wrong")
        with client.app.state.db.session_scope() as session:
            stored = {e.kind: e.key for e in session.exec(select(RateEvent))}
            key = session.exec(select(InstallationKey)).one().value
            assert keys.secret_key(session, settings) == key.encode()
    assert len(key) >= 40
    assert stored["login-client"] != hashlib.sha256(NAT[0].encode()).hexdigest()
    assert stored["login-client"] == keys.digest(key.encode(), NAT[0])

    # The configured key wins, and the same address then gives another hash.
    with TestClient(app_factory(secret_key=SecretStr("configured key")), client=NAT) as client:
        log_in(client, "lotte", "wrong")
        with client.app.state.db.session_scope() as session:
            hashes = {e.key for e in session.exec(select(RateEvent)) if e.kind == "login-client"}
    assert hashes == {stored["login-client"], keys.digest(b"configured key", NAT[0])}


def failed_logins_from(service: ServiceProcess, count: int, forwarded: list[str]) -> list[int]:
    """``count`` wrong passwords, each claiming another X-Forwarded-For; the status codes."""
    statuses = []
    with httpx.Client(base_url=service.url) as browser:
        for n in range(count):
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/console/login").text)[1]
            response = browser.post(
                "/console/login",
                data={"username": "officer", "password": "wrong", "csrf": csrf},
                headers={"Origin": service.url, "X-Forwarded-For": forwarded[n % len(forwarded)]},
            )
            statuses.append(response.status_code)
    return statuses


@pytest.mark.slow
def test_forwarded_addresses_are_believed_only_from_configured_proxies(database_url, tmp_path):
    seed(database_url, "http://127.0.0.1:9", 0)
    rotating = [f"203.0.113.{n}" for n in range(1, 30)]
    env = service_env(database_url, BROADCAST_LOGIN_FAILURES_PER_CLIENT="3")
    with ServiceProcess(env, tmp_path) as service:
        # Rotating the header from loopback does not make a new client of each request.
        assert failed_logins_from(service, 4, rotating) == [401, 401, 401, 429]
    # The child made the installation key; this process reads the same one from the database.
    db = Database(database_url)
    with db.session_scope() as session:
        secret = keys.secret_key(session, Settings(database_url=database_url))
        counted = {e.key for e in session.exec(select(RateEvent)) if e.kind == "login-client"}
    db.dispose()
    assert counted == {keys.digest(secret, "127.0.0.1")}

    behind_proxy = env | {"BROADCAST_FORWARDED_ALLOW_IPS": "127.0.0.1/32, ::1"}
    with ServiceProcess(behind_proxy, tmp_path) as service:
        # From the proxy, the forwarded address is the client's: each one is counted on its own.
        assert failed_logins_from(service, 4, rotating[10:]) == [401] * 4
        assert failed_logins_from(service, 4, ["203.0.113.99"]) == [401, 401, 401, 429]


def test_waits_double_from_one_minute_and_never_exceed_fifteen(settings):
    db = Database(settings.database_url)
    waits = []
    for _ in range(100):  # parallel tries can push a count far past its limit
        with db.session_scope() as session:
            ratelimit.record(session, "login-client", "someone")
        with db.session_scope() as session:
            waits.append(throttle_wait(session))
    db.dispose()
    expected = [0] * 4 + [60, 120, 240, 480] + [900] * 92  # 5 free, then doubling
    assert all(e - 30 < w <= e for w, e in zip(waits, expected, strict=True)), waits[:12]


def throttle_wait(session) -> int:
    return ratelimit.backoff(
        session, "login-client", "someone", free=5, first=timedelta(minutes=1), longest=WINDOW
    )
