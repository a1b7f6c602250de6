"""Fixtures for the feed tests: a feed server on 127.0.0.1, and a "world" (database, channels and a
poller, no background services) on each backend, built the way a process builds it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlmodel import col, func, select

from broadcast.audit import AuditEvent
from broadcast.delivery.models import Delivery
from broadcast.feeds import service
from broadcast.feeds.models import FeedAlert, FeedReading, FeedSource
from broadcast.feeds.poll.polling import FeedPoller, PollResult
from broadcast.incidents import service as incidents
from broadcast.runtime import assemble, prepare_database
from broadcast.settings import Settings
from broadcast.timeline.models import Update

HOUR = timedelta(hours=1)


def feed_settings(settings: Settings, **overrides) -> Settings:
    return settings.model_copy(
        update={
            "feed_min_interval_seconds": 1,
            # Generous for a loaded machine: a local stand-in answers in milliseconds.
            "feed_timeout_seconds": 4.0,
            "feed_total_seconds": 8.0,
            "feed_max_bytes": 2_000_000,
            "feed_alert_after": 3,
        }
        | overrides
    )


@dataclass
class World:
    """One process's view: ``add`` a source, ``poll`` it, look at what it stored."""

    settings: Settings

    def __post_init__(self) -> None:
        from channels.platform import PlatformChannel
        from channels.webhook import WebhookChannel

        self.db, self.channels = assemble(self.settings, [PlatformChannel, WebhookChannel])
        prepare_database(self.db, self.settings)
        self.poller = FeedPoller(self.db, self.channels, self.settings)

    def close(self) -> None:
        self.poller.close()
        self.db.dispose()

    def add(self, url: str, kind: str = "level", **values) -> int:
        with self.db.session_scope() as session:
            values = {"interval_seconds": 60} | values
            source = service.create(
                session, url=url, kind=kind, min_interval=1, allow_private=True, **values
            )
            return source.id

    def incident(self, **fields) -> int:
        with self.db.session_scope() as session:
            values = {"title": "Hoogwater Maas", "severity": "advisory", "area_codes": ["mook"]}
            return incidents.create(session, **(values | fields)).id

    def poll(self, source_id: int) -> PollResult:
        return self.poller.poll(source_id)

    def source(self, source_id: int) -> FeedSource:
        with self.db.session_scope() as session:
            return session.get(FeedSource, source_id)

    def readings(self, source_id: int) -> list[FeedReading]:
        with self.db.session_scope() as session:
            return service.readings(session, source_id)

    def alerts(self, source_id: int) -> list[FeedAlert]:
        with self.db.session_scope() as session:
            return service.alerts(session, source_id, limit=1000)

    def updates(self) -> list[Update]:
        with self.db.session_scope() as session:
            return list(session.exec(select(Update).order_by(col(Update.id))))

    def deliveries(self) -> int:
        with self.db.session_scope() as session:
            return session.exec(select(func.count()).select_from(Delivery)).one()

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.session_scope() as session:
            return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def world(settings):
    made = World(feed_settings(settings))
    yield made
    made.close()


def at(hours: float) -> datetime:
    """A time relative to now (readings must be fresh to fire a rule)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)


def gauge_rss(readings: list[tuple[datetime, str]], station: str = "Mook") -> bytes:
    """An RSS gauge feed, newest entry first, one reading per item ("Mook: 1120 cm")."""
    items = "".join(
        f"<item><guid isPermaLink='false'>{station}-{moment.isoformat()}</guid>"
        f"<title>{station}: {value}</title>"
        f"<pubDate>{format_datetime(moment, usegmt=True)}</pubDate></item>"
        for moment, value in sorted(readings, reverse=True)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Waterstanden {station}</title><link>http://127.0.0.1/</link>"
        f"<description>gauge</description>{items}</channel></rss>"
    ).encode()
