"""Fetching feeds from servers on 127.0.0.1: conditional GET, and every way a server fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcast.feeds.poll.fetch import Clients, FetchError, FetchLimits, fetch
from tests.fakes.feeds import FeedServer

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Maas</title>
<item><guid>mook-1</guid><title>Mook: 1150 cm</title>
<pubDate>Wed, 14 Jul 2021 10:00:00 GMT</pubDate></item></channel></rss>"""


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def clients():
    made = Clients(
        FetchLimits(
            timeout_seconds=1.0, total_seconds=3.0, max_bytes=100_000, allow_private_addresses=True
        )
    )
    yield made
    made.close()


def get(clients, url, **conditional):
    return fetch(clients.get(), url, limits=clients.limits, **conditional)


def test_etag_turns_the_second_fetch_into_a_304_without_a_body(server, clients):
    server.state.put("/mook.xml", RSS)
    first = get(clients, server.url_for("/mook.xml"))
    assert (first.not_modified, first.content) == (False, RSS)
    assert first.etag

    second = get(clients, server.url_for("/mook.xml"), etag=first.etag)

    assert second.not_modified and second.content == b""
    assert second.etag == first.etag
    assert server.state.not_modified["/mook.xml"] == 1


def test_a_changed_document_is_fetched_again_despite_the_old_etag(server, clients):
    server.state.put("/mook.xml", RSS)
    first = get(clients, server.url_for("/mook.xml"))
    server.state.put("/mook.xml", RSS.replace(b"1150", b"1160"))
    second = get(clients, server.url_for("/mook.xml"), etag=first.etag)
    assert not second.not_modified
    assert b"1160" in second.content and second.etag != first.etag


def test_last_modified_alone_also_gives_a_304(server, clients):
    stamp = datetime(2021, 7, 14, 10, 0, tzinfo=UTC)
    server.state.put("/venlo.xml", RSS, etag=False, last_modified=stamp)
    first = get(clients, server.url_for("/venlo.xml"))
    assert first.etag is None and first.last_modified == "Wed, 14 Jul 2021 10:00:00 GMT"
    second = get(clients, server.url_for("/venlo.xml"), last_modified=first.last_modified)
    assert second.not_modified


def test_a_slow_server_times_out(server, clients):
    server.state.put("/slow.xml", RSS, delay=3)
    with pytest.raises(FetchError, match="timed out"):  # before the answer, 3 s later, came
        get(clients, server.url_for("/slow.xml"))


@pytest.mark.parametrize("status", [500, 503, 404, 403])
def test_an_error_status_is_a_failure_with_the_status(server, clients, status):
    server.state.fail("/down.xml", status)
    with pytest.raises(FetchError, match=f"HTTP {status}"):
        get(clients, server.url_for("/down.xml"))


def test_a_declared_oversized_body_is_refused_before_reading_it(server, clients):
    server.state.put("/big.xml", b"x" * 200_000)
    with pytest.raises(FetchError, match="too large: Content-Length 200000"):
        get(clients, server.url_for("/big.xml"))


def test_an_endless_body_without_content_length_is_cut_off_at_the_cap(server, clients):
    server.state.endless("/endless.xml")
    with pytest.raises(FetchError, match="more than 100000 bytes; download stopped"):
        get(clients, server.url_for("/endless.xml"))


def test_a_redirect_loop_stops_after_the_redirect_limit(server, clients):
    server.state.redirect("/a", "/b")
    server.state.redirect("/b", "/a")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        get(clients, server.url_for("/a"))
    assert server.state.hits["/a"] + server.state.hits["/b"] == 6  # the first + 5 redirects


def test_a_short_redirect_chain_is_followed(server, clients):
    server.state.redirect("/old.xml", "/moved.xml")
    server.state.redirect("/moved.xml", "/mook.xml")
    server.state.put("/mook.xml", RSS)
    assert get(clients, server.url_for("/old.xml")).content == RSS


def test_a_closed_port_is_a_connection_failure(clients):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed"):
        get(clients, f"http://127.0.0.1:{port}/feed.xml")


def test_the_reason_never_contains_the_url(server, clients):
    server.state.fail("/down.xml", 500)
    with pytest.raises(FetchError) as failure:
        get(clients, server.url_for("/down.xml?api_key=secret"))
    assert "secret" not in str(failure.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/feed.xml",
        "http://localhost:9/feed.xml",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.1.2.3/feed.xml",
        "http://[::1]:9/feed.xml",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(url):
    guarded = Clients(FetchLimits(timeout_seconds=1.0))
    try:
        with pytest.raises(FetchError, match="non-public address"):
            fetch(guarded.get(), url, limits=guarded.limits)
    finally:
        guarded.close()


def test_a_redirect_to_a_private_address_is_refused_at_the_hop(server, monkeypatch):
    """127.0.0.1 (the feed server) counts as public here; its redirect to 127.0.0.2 does not,
    and is refused before any connection to it is made."""
    from ipaddress import ip_address

    from channels import netguard

    monkeypatch.setattr(netguard, "is_public", lambda address: address == ip_address("127.0.0.1"))
    port = server.url.rsplit(":", 1)[1]
    server.state.redirect("/a.xml", f"http://127.0.0.2:{port}/b.xml")
    server.state.put("/b.xml", b"<rss/>")
    guarded = Clients(FetchLimits(timeout_seconds=1.0))
    try:
        with pytest.raises(FetchError, match=r"127\.0\.0\.2 is a non-public address"):
            fetch(guarded.get(), server.url_for("/a.xml"), limits=guarded.limits)
    finally:
        guarded.close()
    assert (server.state.hits["/a.xml"], server.state.hits["/b.xml"]) == (1, 0)


def test_a_name_is_checked_when_connecting_not_only_before(monkeypatch):
    """A name that resolves to a private address at connect time is refused (DNS rebinding):
    the check and the connection use the same answer, so nothing is connected to."""
    from channels import netguard

    inside = [(2, 1, 6, "", ("10.0.0.7", 80))]
    monkeypatch.setattr(netguard.socket, "getaddrinfo", lambda *args, **kwargs: inside)
    netguard.check_url("http://gauge.example/feed.xml")  # a name passes when it is added
    guarded = Clients(FetchLimits(timeout_seconds=1.0))
    try:
        with pytest.raises(FetchError, match=r"gauge\.example resolves to 10\.0\.0\.7"):
            fetch(guarded.get(), "http://gauge.example/feed.xml", limits=guarded.limits)
    finally:
        guarded.close()
