"""One poll of one source: fetch (no transaction open), extract (in a worker process, keeping the
newest ``feed_max_entries`` entries), then store and run the rules in one short transaction that
holds the source's row lock, and record the source's health. The cap keeps that transaction short:
on SQLite it holds the database's write lock, which every other transaction waits for.

A failure (network, HTTP status, size, an unreadable document) never touches what was stored
before; it sets ``status: failing`` with the reason, counts consecutive failures, and after
``feed_alert_after`` of them alerts the officers once: an audit event, a ``feed_alert`` event for
the console, ``alerting: true`` in the API and a log line (with the feed's id, never its URL).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session, func, select

from broadcast import audit, telemetry
from broadcast.common import utcnow
from broadcast.db import Database, emit
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import NotFound
from broadcast.feeds import forecast as forecasts
from broadcast.feeds.models import FeedKind, FeedReading, FeedSource, FeedStatus
from broadcast.feeds.parse import rws
from broadcast.feeds.parse.extract import Extracted, Options, Parsers, keep_newest
from broadcast.feeds.parse.parsing import FeedError
from broadcast.feeds.poll import intake
from broadcast.feeds.poll.fetch import Clients, FetchError, FetchLimits, fetch, post_json
from broadcast.settings import Settings

log = logging.getLogger(__name__)
RWS_HISTORY = timedelta(hours=6)  # measurements asked for on a first poll (and at most)
RWS_FORECAST_AHEAD = timedelta(days=7)  # the forecast window
RWS_MAX_BACKOFF = timedelta(hours=1)  # a failing rws source is polled at least this often


@dataclass
class PollResult:
    source_id: int
    outcome: str  # "new", "unchanged" (nothing new), "not_modified" (304), "failed"
    new_readings: int = 0
    new_alerts: int = 0
    updates: list[int] = field(default_factory=list)
    error: str | None = None
    downloaded: int = 0  # bytes of the document (0 for a 304 or a failure)


def limits_from(settings: Settings) -> FetchLimits:
    return FetchLimits(
        timeout_seconds=settings.feed_timeout_seconds,
        total_seconds=settings.feed_total_seconds,
        max_bytes=settings.feed_max_bytes,
        max_redirects=settings.feed_max_redirects,
        user_agent=settings.feed_user_agent,
        allow_private_addresses=settings.feed_allow_private_addresses,
    )


class FeedPoller:
    def __init__(self, db: Database, channels: ChannelSet, settings: Settings):
        self.db, self.channels, self.settings = db, channels, settings
        self.clients = Clients(limits_from(settings))
        self.parsers = Parsers(settings.feed_parse_workers)
        # "Poll now" from the API runs here, not on the request thread pool: a slow or huge
        # feed ties up at most these threads, never the threads every other request needs.
        self._threads = ThreadPoolExecutor(
            max(1, settings.feed_concurrency), thread_name_prefix="feed-poll"
        )

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self.clients.close()
        self.parsers.close()

    async def poll_async(self, source_id: int) -> PollResult:
        return await asyncio.wrap_future(self._threads.submit(self.poll, source_id))

    def poll(self, source_id: int, *, scheduled: bool = False) -> PollResult:
        """``scheduled``: a run of the source's interval job, which an rws source in back-off
        skips (a poll asked for by an officer always goes out)."""
        result = self._poll(source_id, scheduled)
        telemetry.count_poll(result.outcome)
        return result

    def _poll(self, source_id: int, scheduled: bool = False) -> PollResult:
        with self.db.session_scope() as session:
            source = session.get(FeedSource, source_id)
            if source is None:
                raise NotFound(f"feed {source_id} not found")
            url, kind, etag, modified = source.url, source.kind, source.etag, source.last_modified
            target = RwsTarget.of(session, source) if kind == FeedKind.rws else None
            options = Options(
                unit=source.unit,
                value_pattern=source.value_pattern,
                items_path=source.items_path,
                value_path=source.value_path,
                time_path=source.time_path,
            )
        if target is not None:
            return self._poll_rws(source_id, target, scheduled)
        try:
            fetched = fetch(
                self.clients.get(),
                url,
                limits=self.clients.limits,
                etag=etag,
                last_modified=modified,
            )
            if fetched.not_modified:
                return self._record(source_id, PollResult(source_id, "not_modified"))
            extracted = self.parsers.extract_newest(
                kind, fetched.content, options, self.settings.feed_max_entries
            )
        except (FetchError, FeedError) as exc:
            return self._record(source_id, PollResult(source_id, "failed", error=str(exc)))
        try:
            with self.db.session_scope() as session:
                source = _locked(session, source_id)
                now = utcnow()
                found = intake.ingest(
                    session,
                    source,
                    extracted,
                    channels=self.channels,
                    now=now,
                    fresh_after=now - timedelta(hours=self.settings.feed_fresh_hours),
                )
                result = PollResult(
                    source_id,
                    "new" if found.new_readings or found.new_alerts else "unchanged",
                    found.new_readings,
                    found.new_alerts,
                    found.updates,
                    downloaded=len(fetched.content),
                )
                source.etag, source.last_modified = fetched.etag, fetched.last_modified
                source.last_warning = "; ".join(found.warnings)[:2000] or None
                _healthy(session, source, now)
        except Exception as exc:  # a bug or a database error: recorded, never silent
            log.exception("feed intake failed", extra={"feed": source_id})
            reason = f"internal error while storing: {type(exc).__name__}"
            return self._record(source_id, PollResult(source_id, "failed", error=reason))
        if result.updates:
            log.info("feed poll", extra={"feed": source_id, "updates": result.updates})
        return result

    def _poll_rws(self, source_id: int, target: RwsTarget, scheduled: bool) -> PollResult:
        """Two POSTs to OphalenWaarnemingen: the measurements since the newest one stored (the
        last ``RWS_HISTORY`` on a first poll), then the forecast for the coming
        ``RWS_FORECAST_AHEAD``; readings and the forecast are stored in one transaction."""
        now = utcnow()
        if scheduled and target.backoff_until is not None and now < target.backoff_until:
            return PollResult(source_id, "backoff")
        client, limits = self.clients.get(), self.clients.limits
        base = target.url.rstrip("/") + rws.OBSERVATIONS
        since = max(target.latest or now - RWS_HISTORY, now - RWS_HISTORY)
        try:
            measured = post_json(
                client,
                base,
                rws.request_body(**target.body, process=rws.MEASUREMENT, start=since, end=now),
                limits=limits,
            )
            expected = post_json(
                client,
                base,
                rws.request_body(
                    **target.body,
                    process=rws.FORECAST,
                    start=now,
                    end=now + RWS_FORECAST_AHEAD,
                ),
                limits=limits,
            )
            measurements = rws.parse_answer(measured.content)
            forecast = rws.parse_answer(expected.content)
        except (FetchError, FeedError) as exc:
            return self._record(source_id, PollResult(source_id, "failed", error=str(exc)))
        readings = rws.readings(measurements, location=target.location, quantity=target.quantity)
        extracted = keep_newest(
            Extracted(readings=readings, warnings=measurements.warnings + forecast.warnings),
            self.settings.feed_max_entries,
        )
        try:
            with self.db.session_scope() as session:
                source = _locked(session, source_id)
                found = intake.ingest(
                    session,
                    source,
                    extracted,
                    channels=self.channels,
                    now=now,
                    fresh_after=now - timedelta(hours=self.settings.feed_fresh_hours),
                )
                outcome = forecasts.store(
                    session,
                    source,
                    forecast,
                    channels=self.channels,
                    now=now,
                    warnings=found.warnings,
                )
                if measured.status_code == 204:
                    found.warnings.append("no measurements in the period (204 No Content)")
                if expected.status_code == 204:
                    found.warnings.append("no forecast published (204 No Content)")
                updates = found.updates + (outcome.updates or [])
                result = PollResult(
                    source_id,
                    "new" if found.new_readings or outcome.new_run else "unchanged",
                    found.new_readings,
                    updates=updates,
                    downloaded=len(measured.content) + len(expected.content),
                )
                source.last_warning = "; ".join(found.warnings)[:2000] or None
                _healthy(session, source, now)
        except Exception as exc:  # a bug or a database error: recorded, never silent
            log.exception("feed intake failed", extra={"feed": source_id})
            reason = f"internal error while storing: {type(exc).__name__}"
            return self._record(source_id, PollResult(source_id, "failed", error=reason))
        if result.updates:
            log.info("feed poll", extra={"feed": source_id, "updates": result.updates})
        return result

    def _record(self, source_id: int, result: PollResult) -> PollResult:
        """Health of a poll that stored nothing: a 304, or a failure with its reason."""
        with self.db.session_scope() as session:
            source = _locked(session, source_id)
            now = utcnow()
            if result.error is None:
                _healthy(session, source, now)
            else:
                _failing(session, source, result.error, now, self.settings.feed_alert_after)
        return result


@dataclass(frozen=True)
class RwsTarget:
    """What a poll of an rws source needs, read before any request goes out."""

    url: str
    location: str
    quantity: str
    reference: str
    latest: datetime | None  # the newest stored measurement
    backoff_until: datetime | None  # failing: the next scheduled poll waits until then

    @property
    def body(self) -> dict[str, str]:
        return {"location": self.location, "quantity": self.quantity, "reference": self.reference}

    @classmethod
    def of(cls, session: Session, source: FeedSource) -> RwsTarget:
        latest = session.exec(
            select(func.max(FeedReading.observed_at)).where(FeedReading.source_id == source.id)
        ).one()
        backoff_until = None
        if source.consecutive_failures and source.last_polled_at is not None:
            # 1, 2, 4, ... intervals after the last failure, at most RWS_MAX_BACKOFF
            factor = 2 ** min(source.consecutive_failures - 1, 10)
            wait = min(timedelta(seconds=source.interval_seconds * factor), RWS_MAX_BACKOFF)
            backoff_until = source.last_polled_at + wait - timedelta(seconds=1)
        return cls(
            url=source.url,
            location=source.location or "",
            quantity=source.quantity or rws.DEFAULT_QUANTITY,
            reference=source.reference or rws.DEFAULT_REFERENCE,
            latest=_aware(latest),
            backoff_until=backoff_until,
        )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _locked(session: Session, source_id: int) -> FeedSource:
    """The source row, locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises writers): two polls of one source never evaluate its rules at the same time."""
    source = session.exec(
        select(FeedSource).where(FeedSource.id == source_id).with_for_update()
    ).first()
    if source is None:
        raise NotFound(f"feed {source_id} not found")
    return source


def _healthy(session: Session, source: FeedSource, now) -> None:
    if source.status == FeedStatus.failing:
        audit.record(
            session,
            actor=f"feed:{source.id}",
            action="feed.recovered",
            subject=f"feed:{source.id}",
            failures=source.consecutive_failures,
        )
        emit(session, "feed_recovered", feed_id=source.id)
        log.info("feed recovered", extra={"feed": source.id, "host": _host(source.url)})
    source.status, source.last_error = FeedStatus.ok, None
    source.consecutive_failures, source.alerting = 0, False
    source.last_polled_at = source.last_success_at = now
    session.add(source)


def _failing(session: Session, source: FeedSource, reason: str, now, alert_after: int) -> None:
    if source.status == FeedStatus.ok:
        audit.record(
            session,
            actor=f"feed:{source.id}",
            action="feed.failing",
            subject=f"feed:{source.id}",
            reason=reason[:500],
        )
    source.status, source.last_error = FeedStatus.failing, reason[:1000]
    source.consecutive_failures += 1
    source.last_polled_at = now
    log.warning(
        "feed poll failed",
        extra={
            "feed": source.id,
            "host": _host(source.url),
            "failures": source.consecutive_failures,
            "reason": reason[:200],
        },
    )
    if source.consecutive_failures >= alert_after and not source.alerting:
        source.alerting = True
        audit.record(
            session,
            actor=f"feed:{source.id}",
            action="feed.alert",
            subject=f"feed:{source.id}",
            failures=source.consecutive_failures,
            reason=reason[:500],
        )
        emit(session, "feed_alert", feed_id=source.id, failures=source.consecutive_failures)
        log.error(
            "feed failing repeatedly; officers alerted",
            extra={"feed": source.id, "failures": source.consecutive_failures},
        )
    session.add(source)


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"
