"""The cryptography of Web Push: VAPID keys (RFC 8292), subscription keys and the ``aes128gcm``
payload encryption (RFC 8291, on RFC 8188).

The encryption is ``http_ece`` and the VAPID signature ``py_vapid``, the two libraries
``pywebpush`` is built on; ``pywebpush`` itself is not used for sending because it sends with
``requests`` (blocking) or its own ``aiohttp`` session, and every push request must go through the
guarded ``httpx`` transport of ``channels.netguard``. Both calls here are pure CPU work of well
under a millisecond (one ECDH and one HKDF per message, one ECDSA signature per push service and
twelve hours), so they run on the event loop.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

CURVE = ec.SECP256R1()
AUTH_BYTES = 16
RECORD_SIZE = 4096  # one record: push services accept at most 4096 bytes of body
TOKEN_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
TOKEN_RENEW_BEFORE = 3600  # a token is renewed when less than this is left


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def private_key_from_raw(text: str) -> ec.EllipticCurvePrivateKey:
    """The key of ``BROADCAST_VAPID_PRIVATE_KEY``: base64url of the raw 32-byte scalar."""
    try:
        raw = unb64url(text)
    except ValueError:
        raise ValueError("the VAPID private key is not base64url") from None
    if len(raw) != 32:
        raise ValueError("the VAPID private key must be 32 bytes (base64url of the raw key)")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), CURVE)
    except ValueError:
        raise ValueError("the VAPID private key is not a valid P-256 key") from None


def new_key_pair() -> tuple[str, str]:
    """(private, public): base64url of the raw 32-byte private key and of the 65-byte point."""
    key = ec.generate_private_key(CURVE)
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(raw), b64url(public_point(key.public_key()))


@dataclass(frozen=True)
class Subscription:
    """A browser's push subscription: where to POST and the keys to encrypt for it."""

    endpoint: str
    p256dh: str  # base64url of the browser's 65-byte P-256 point
    auth: str  # base64url of the 16-byte authentication secret

    @property
    def address(self) -> str:
        """How the subscription is stored as a subscriber address (one line, URL first)."""
        return json.dumps(
            {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}},
            separators=(",", ":"),
        )


def subscription(endpoint: str, p256dh: str, auth: str) -> Subscription:
    """A checked subscription; ``ValueError`` with the reason for a key that cannot be used."""
    try:
        point = unb64url(p256dh)
        secret = unb64url(auth)
    except ValueError:
        raise ValueError("the subscription's keys must be base64url") from None
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(CURVE, point)
    except ValueError:
        raise ValueError("p256dh is not a P-256 public key") from None
    if len(point) != 65:
        raise ValueError("p256dh must be an uncompressed P-256 point (65 bytes)")
    if len(secret) != AUTH_BYTES:
        raise ValueError("auth must be 16 bytes")
    return Subscription(endpoint.strip(), b64url(point), b64url(secret))


def parse_address(address: str) -> Subscription:
    """The stored address back as a subscription (what ``Subscription.address`` wrote)."""
    try:
        document = json.loads(address)
        keys = document["keys"]
        endpoint, p256dh, auth = document["endpoint"], keys["p256dh"], keys["auth"]
        if not all(isinstance(value, str) for value in (endpoint, p256dh, auth)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ValueError("a push address is a subscription: endpoint, p256dh and auth") from None
    return subscription(endpoint, p256dh, auth)


def encrypt(payload: bytes, target: Subscription) -> bytes:
    """The body of one push message: ``aes128gcm`` for the subscription's keys, one record,
    with a new sender key and salt each time."""
    return http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=ec.generate_private_key(CURVE),
        dh=unb64url(target.p256dh),
        auth_secret=unb64url(target.auth),
        version="aes128gcm",
        rs=RECORD_SIZE,
    )


def audience(endpoint: str) -> str:
    """The ``aud`` claim: the push service's origin."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidSigner:
    """``Authorization: vapid t=<JWT>, k=<public key>`` per push service origin. A token is kept
    for twelve hours (the JWT's ``exp``) and renewed an hour before, so a broadcast to a hundred
    thousand browsers signs once per push service, not once per message."""

    def __init__(
        self, private_key: ec.EllipticCurvePrivateKey, subject: str, clock: Callable[[], float]
    ):
        self._vapid = Vapid02(private_key)
        self.subject = subject
        self.public_key = b64url(public_point(private_key.public_key()))
        self._clock = clock
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str) -> str:
        aud = audience(endpoint)
        now = self._clock()
        cached = self._tokens.get(aud)
        if cached is not None and cached[0] - now > TOKEN_RENEW_BEFORE:
            return cached[1]
        expires = int(now) + TOKEN_LIFETIME
        claims = {"aud": aud, "exp": expires, "sub": self.subject}
        header = self._vapid.sign(claims)["Authorization"]
        if len(self._tokens) > 1000:  # there are a handful of push services; bound it anyway
            self._tokens.clear()
        self._tokens[aud] = (expires, header)
        return header


def wall_clock() -> float:
    return time.time()
