"""Web push sign-up: a browser's push subscription becomes a subscriber of the ``push``
channel at once (the browser asked its resident for permission; there is nothing to confirm).

The subscription is stored as the adapter canonicalises it (``normalize_address``: one line of
JSON that starts with the endpoint). The endpoint identifies the browser: the same endpoint
posted again is the same subscriber, with the areas, language and keys of the latest post.
Unsubscribing erases the subscriber. At most so many sign-ups per client address and in total
per hour, counted in the database (``broadcast.ratelimit``) so every process shares the count.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import Session, col, select

from broadcast import keys, ratelimit
from broadcast.areas import service as areas
from broadcast.common import DEFAULT_LANGUAGE, Language
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import TooManyRequests, Unavailable
from broadcast.i18n import _
from broadcast.ratelimit import Limit
from broadcast.settings import Settings
from broadcast.subscribers import service as subscribers
from broadcast.subscribers.models import Subscriber

CHANNEL = "push"
HOUR = timedelta(hours=1)
PER_CLIENT = "push-signup-client"
ALL = "push-signup-all"


def subscribe(
    session: Session,
    *,
    settings: Settings,
    channels: ChannelSet,
    endpoint: str,
    p256dh: str,
    auth: str,
    client: str,
    area_codes: list[str] | None = None,
    language: Language = DEFAULT_LANGUAGE,
) -> Subscriber:
    """Subscribe the browser, or update the subscriber it is already."""
    available(channels)
    document = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
    address = subscribers.normalize(channels, CHANNEL, json.dumps(document))  # Invalid: 422
    codes = areas.check_codes(session, area_codes or [])
    check_limits(session, settings, client)
    existing = by_endpoint(session, endpoint)
    if existing is not None and existing.address != address:  # the browser renewed its keys
        existing.address = address
        session.add(existing)
        session.flush()
    return subscribers.subscribe(
        session,
        channels=channels,
        channel=CHANNEL,
        address=address,
        area_codes=codes,
        language=language.value,
        confirmed=True,
        actor="resident:web",
        update_existing=True,
    )


def unsubscribe(session: Session, *, settings: Settings, endpoint: str) -> bool:
    """Erase the browser's subscriber; False when the endpoint was not subscribed."""
    subscriber = by_endpoint(session, endpoint)
    if subscriber is None:
        return False
    subscribers.erase(session, subscriber, actor="resident:web", settings=settings)
    return True


def by_endpoint(session: Session, endpoint: str) -> Subscriber | None:
    # The adapter's canonical address begins with the endpoint member: {"endpoint":"…",
    prefix = json.dumps({"endpoint": endpoint.strip()}, separators=(",", ":"))[:-1] + ","
    query = select(Subscriber).where(
        Subscriber.channel == CHANNEL, col(Subscriber.address).startswith(prefix, autoescape=True)
    )
    return session.exec(query).first()


def check_limits(session: Session, settings: Settings, client: str) -> None:
    secret = keys.secret_key(session, settings)
    limits = [
        (Limit(PER_CLIENT, settings.signup_push_per_client, HOUR), ratelimit.key(secret, client)),
        (Limit(ALL, settings.signup_push_per_hour, HOUR), ratelimit.key(secret, "everyone")),
    ]
    if seconds := max(ratelimit.wait(session, limit, key) for limit, key in limits):
        raise TooManyRequests(_("too many sign-ups: try again later"), retry_after=seconds)
    for limit, key in limits:
        ratelimit.record(session, limit.kind, key)


def available(channels: ChannelSet) -> None:
    if CHANNEL not in channels:
        raise Unavailable(_("web push is not available"))
