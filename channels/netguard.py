"""One guard against requests into the network the service runs in (SSRF): feeds, webhook
subscribers and (later) web push endpoints use it.

Loopback, private, link-local (cloud metadata at 169.254.169.254), multicast and other special
addresses are refused. The host name is resolved when a connection is opened and the connection
goes to the address that was checked, so a DNS answer that changes between a check and the
connect (rebinding) cannot point a public name at a private address; every redirect hop opens
its own connection and is checked the same way. TLS still verifies the certificate against the
host name (httpcore sends the URL's host as SNI, not the address).

    client = httpx.AsyncClient(transport=guarded_async_transport())
    check_url("http://10.0.0.1/hook")  # raises PrivateAddress: validates input, no DNS lookup

A client with an explicit transport ignores the HTTP(S)_PROXY environment variables, so no
request leaves through a proxy that would skip the guard.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateAddress(Exception):
    """A host that resolves to a non-public address; ``str()`` is safe to store and to log."""


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def public_addresses(host: str, infos: list[tuple[Any, ...]]) -> list[str]:
    """The addresses of a ``getaddrinfo`` answer, or ``PrivateAddress`` if any is not public."""
    addresses = [info[4][0].split("%", 1)[0] for info in infos]
    for text in addresses:
        if not is_public(ipaddress.ip_address(text)):
            where = "is" if text == host else f"resolves to {text},"
            raise PrivateAddress(f"refused: {host} {where} a non-public address")
    return list(dict.fromkeys(addresses))


def check_url(url: str) -> None:
    """Refuse a URL whose host is a non-public address or a loopback name, to validate input
    early. No DNS lookup here (callers may hold a database transaction): names are checked when
    each connection is opened."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        raise PrivateAddress(f"refused: {host} is a non-public address")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public(address):
        raise PrivateAddress(f"refused: {host} is a non-public address")


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self.inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"name lookup failed: {exc}") from exc
        error: Exception | None = None
        for address in public_addresses(host, infos):  # every address is checked before any connect
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise PrivateAddress("refused: a Unix socket is not a public address")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self.inner = inner

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"name lookup failed: {exc}") from exc
        error: Exception | None = None
        for address in public_addresses(host, infos):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise PrivateAddress("refused: a Unix socket is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(**options: Any) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` (same options) whose every connection is checked."""
    transport = httpx.HTTPTransport(**options)
    _wrap_backend(transport, _GuardedBackend)
    return transport


def guarded_async_transport(**options: Any) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(**options)
    _wrap_backend(transport, _AsyncGuardedBackend)
    return transport


def _wrap_backend(transport: Any, guard: type) -> None:
    # httpx (0.27, 0.28) takes no network backend; the httpcore pool inside it does. Fail loudly
    # rather than run unguarded should a later httpx keep its pool elsewhere.
    pool: Any = getattr(transport, "_pool", None)  # private to httpx: untyped
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx version hides its network backend: the guard cannot work")
    pool._network_backend = guard(pool._network_backend)


def guarded_client(timeout: float, *, allow_private: bool = False) -> httpx.AsyncClient:
    """The client of an adapter that posts to addresses residents or partners gave: no
    redirects, and only public addresses unless ``allow_private`` (local testing)."""
    transport = None if allow_private else guarded_async_transport()
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)
