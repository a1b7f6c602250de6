"""Fetch one feed document over HTTP: timeouts, a size cap, bounded redirects, conditional GET.

The body is streamed and the download stops as soon as it passes the cap (a ``Content-Length``
over the cap is refused before a byte of the body is read); the cap applies to the decoded
bytes, so a compressed bomb is stopped too. A ``304 Not Modified`` returns no content: nothing
is parsed. Every failure is a ``FetchError`` whose text is safe to store and to log (status,
reason, never the URL with its query string).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import httpx

from channels.netguard import PrivateAddress, guarded_transport

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/cap+xml, application/xml;q=0.9, "
    "text/xml;q=0.9, application/json;q=0.9, */*;q=0.5"
)


class FetchError(Exception):
    """The document could not be fetched; ``str()`` says why."""


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 10.0  # connect, and between two chunks of the body
    total_seconds: float = 30.0  # the whole download
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = "broadcast-feeds/0.1"
    # Feeds live on the internet. Loopback, private, link-local (cloud metadata) and other
    # special addresses are refused at every connection (channels.netguard), so a feed URL
    # cannot make the service probe the network it runs in; tests and an intranet gauge server
    # switch this on.
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class Fetched:
    not_modified: bool
    content: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    status_code: int = 200


def fetch(
    client: httpx.Client,
    url: str,
    *,
    limits: FetchLimits,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return Fetched(
                    not_modified=True,
                    etag=response.headers.get("etag") or etag,
                    last_modified=response.headers.get("last-modified") or last_modified,
                    status_code=304,
                )
            if response.status_code >= 400 or response.status_code < 200:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            if response.is_redirect:  # a redirect without a Location, or a 3xx we do not follow
                raise FetchError(f"HTTP {response.status_code} without a usable Location")
            content = _read_capped(response, limits, started)
            return Fetched(
                not_modified=False,
                content=content,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                status_code=response.status_code,
            )
    except FetchError:
        raise
    except PrivateAddress as exc:
        raise FetchError(str(exc)) from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {limits.max_redirects} redirects (a redirect loop?)") from None
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__
        raise FetchError(f"timed out ({kind}) after {limits.timeout_seconds:g} s") from None
    except httpx.DecodingError as exc:
        raise FetchError(f"undecodable content encoding: {_short(exc)}") from None
    except httpx.UnsupportedProtocol:
        raise FetchError("unsupported URL scheme: only http and https are fetched") from None
    except httpx.TransportError as exc:
        raise FetchError(f"connection failed: {type(exc).__name__}: {_short(exc)}") from None


def post_json(client: httpx.Client, url: str, body: dict, *, limits: FetchLimits) -> Fetched:
    """POST a JSON body (Rijkswaterstaat's WaterWebservices take no GET): the same caps, time-outs
    and errors as ``fetch``. ``204 No Content`` is an answer without data, not a failure; a
    ``400`` says why in ``Foutmelding``, which is kept in the error."""
    started = time.monotonic()
    headers = {"Accept": "application/json"}
    try:
        with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code == 204:
                return Fetched(not_modified=False, status_code=204)
            if response.status_code >= 400 or response.status_code < 200:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.status_code == 400:
                    reason += _service_reason(_read_capped(response, limits, started))
                raise FetchError(reason)
            if response.is_redirect:
                raise FetchError(f"HTTP {response.status_code}: a POST is not redirected")
            content = _read_capped(response, limits, started)
            return Fetched(not_modified=False, content=content, status_code=response.status_code)
    except FetchError:
        raise
    except PrivateAddress as exc:
        raise FetchError(str(exc)) from None
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__
        raise FetchError(f"timed out ({kind}) after {limits.timeout_seconds:g} s") from None
    except httpx.DecodingError as exc:
        raise FetchError(f"undecodable content encoding: {_short(exc)}") from None
    except httpx.UnsupportedProtocol:
        raise FetchError("unsupported URL scheme: only http and https are fetched") from None
    except httpx.TransportError as exc:
        raise FetchError(f"connection failed: {type(exc).__name__}: {_short(exc)}") from None


def _service_reason(content: bytes) -> str:
    try:
        message = json.loads(content).get("Foutmelding")
    except (ValueError, AttributeError):
        return ""
    return f": {str(message)[:300]}" if message else ""


def _read_capped(response: httpx.Response, limits: FetchLimits, started: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError(f"too large: Content-Length {declared} > {limits.max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchError(f"too large: more than {limits.max_bytes} bytes; download stopped")
        if time.monotonic() - started > limits.total_seconds:
            raise FetchError(f"too slow: the download took more than {limits.total_seconds:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("\n", 1)[0][:200]


class Clients:
    """One ``httpx.Client`` per thread (polls run in a thread pool), all closed together."""

    def __init__(self, limits: FetchLimits):
        self.limits = limits
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                timeout=httpx.Timeout(self.limits.timeout_seconds),
                follow_redirects=True,
                max_redirects=self.limits.max_redirects,
                headers={"User-Agent": self.limits.user_agent},
                transport=None if self.limits.allow_private_addresses else guarded_transport(),
            )
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.close()
        self._local = threading.local()
