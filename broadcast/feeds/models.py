"""Feed sources, the readings and CAP alerts they yielded, and the memory of their rules.

Everything a poll needs to decide "new or seen before" and "fire or not" is a row, so a restart
(or another process taking over the scheduler) never reads an old entry as new and never fires a
rule twice for one crossing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.common import UTCDateTime, enum_type, utcnow


class FeedKind(StrEnum):
    level = "level"  # RSS/Atom, one reading per entry
    cap = "cap"  # an Atom/RSS index of CAP alerts, or one CAP document
    json = "json"  # a gauge API publishing JSON
    rws = "rws"  # Rijkswaterstaat WaterWebservices (ddapi20): POST with a JSON body


class FeedStatus(StrEnum):
    ok = "ok"
    failing = "failing"


class FeedSource(SQLModel, table=True):
    __tablename__ = "feed_sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=120)  # "Maas bij Mook"; the station
    # Set for sources defined in the settings file ([[feeds]]); they are synced by this name.
    config_name: str | None = Field(default=None, max_length=120, unique=True)
    url: str = Field(max_length=2000)
    kind: FeedKind = Field(sa_type=enum_type(FeedKind))
    interval_seconds: int
    enabled: bool = True
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unit: str | None = Field(default=None, max_length=30)
    value_pattern: str | None = Field(default=None, max_length=500)
    items_path: str | None = Field(default=None, max_length=200)
    value_path: str | None = Field(default=None, max_length=200)
    time_path: str | None = Field(default=None, max_length=200)
    # rws: the location code ("venlo"), the quantity (Grootheid, WATHTE) and its reference plane
    # (Hoedanigheid, NAP).
    location: str | None = Field(default=None, max_length=100)
    quantity: str | None = Field(default=None, max_length=30)
    reference: str | None = Field(default=None, max_length=30)
    rules: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Health of the last poll.
    status: FeedStatus = Field(default=FeedStatus.ok, sa_type=enum_type(FeedStatus))
    last_error: str | None = Field(default=None, max_length=1000)
    last_warning: str | None = Field(default=None, max_length=2000)
    last_polled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    consecutive_failures: int = 0
    alerting: bool = False  # officers were alerted about this run of failures
    # Conditional GET: what the server said last time the document was read successfully.
    etag: str | None = Field(default=None, max_length=300)
    last_modified: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    created_by: int | None = Field(default=None, foreign_key="users.id")


class FeedReading(SQLModel, table=True):
    """One measurement. ``key_hash`` (sha256 of the entry key and observation time) is unique per
    source: an entry that is published again is the same reading."""

    __tablename__ = "feed_readings"
    __table_args__ = (
        UniqueConstraint("source_id", "key_hash"),
        Index("ix_feed_readings_source_time", "source_id", "observed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="feed_sources.id")
    key_hash: str = Field(max_length=64)
    value: float
    unit: str | None = Field(default=None, max_length=30)
    observed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    station: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class FeedAlert(SQLModel, table=True):
    """A CAP alert seen on a source (unique by identifier), and the update it led to."""

    __tablename__ = "feed_alerts"
    __table_args__ = (UniqueConstraint("source_id", "identifier_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="feed_sources.id", index=True)
    identifier_hash: str = Field(max_length=64)
    identifier: str = Field(max_length=500)
    sender: str = Field(default="", max_length=200)
    sent: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: str = Field(max_length=20)
    msg_type: str = Field(max_length=20)
    event: str | None = Field(default=None, max_length=200)
    severity: str | None = Field(default=None, max_length=20)
    urgency: str | None = Field(default=None, max_length=20)
    certainty: str | None = Field(default=None, max_length=20)
    headline: str | None = Field(default=None, max_length=500)
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    expires: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    superseded_by: str | None = Field(default=None, max_length=500)  # a later Update/Cancel
    update_id: int | None = Field(default=None, foreign_key="updates.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class FeedRuleState(SQLModel, table=True):
    """What one rule of one source remembers: armed or waiting for the level to fall below
    ``reset_below`` (hysteresis), how far the readings were evaluated, when it last fired."""

    __tablename__ = "feed_rule_states"
    __table_args__ = (UniqueConstraint("source_id", "rule_key"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="feed_sources.id")
    rule_key: str = Field(max_length=64)  # sha256 of the rule's canonical JSON
    armed: bool = True
    evaluated_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_fired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_update_id: int | None = Field(default=None, foreign_key="updates.id")
    fired: int = 0
    # Expected-peak rules: the forecast run last evaluated and the peak the last draft told.
    run_hash: str | None = Field(default=None, max_length=64)
    peak_value: float | None = None
    peak_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class FeedForecast(SQLModel, table=True):
    """The current forecast run of a source (one row, replaced by each new run): never readings.

    The service's answer names no time of issue that public material documents, so a run is
    identified by the hash of its points and ``issued_at`` is when this service first saw it."""

    __tablename__ = "feed_forecasts"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="feed_sources.id", unique=True)
    run_hash: str = Field(max_length=64)
    issued_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    unit: str | None = Field(default=None, max_length=30)
    peak_value: float
    peak_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # [[ISO 8601 time, value], ...], oldest first
    points: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
