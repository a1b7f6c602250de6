"""Prometheus metrics: what this process observes (``broadcast.telemetry``), and what the
database knows at scrape time, the same whichever process is scraped: deliveries by
channel and state, queue depth, the health of every feed, and what needs a person's attention
(incidents whose promised next update is overdue, residents' questions waiting)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlmodel import Session, func, select

from broadcast.common import utcnow
from broadcast.telemetry import REGISTRY


class _DatabaseCollector:
    def __init__(self, session: Session):
        self.session = session

    def collect(self):
        yield from self._deliveries()
        yield from self._feeds()
        yield from self._attention()

    def _deliveries(self):
        from broadcast.delivery.queue import counts_by_state

        deliveries = GaugeMetricFamily(
            "broadcast_deliveries", "Deliveries by channel and state", labels=["channel", "state"]
        )
        queue = GaugeMetricFamily(
            "broadcast_queue_depth", "Deliveries waiting or being sent", labels=["channel"]
        )
        for channel, states in counts_by_state(self.session).items():
            for state, count in states.items():
                deliveries.add_metric([channel, state], count)
            queue.add_metric([channel], states.get("pending", 0) + states.get("sending", 0))
        yield deliveries
        yield queue

    def _feeds(self):
        from broadcast.feeds.models import FeedSource, FeedStatus

        labels = ["feed", "name"]
        up = GaugeMetricFamily("broadcast_feed_up", "1 if the last poll succeeded", labels=labels)
        failures = GaugeMetricFamily(
            "broadcast_feed_consecutive_failures", "Failed polls in a row", labels=labels
        )
        success = GaugeMetricFamily(
            "broadcast_feed_last_success_timestamp_seconds",
            "When the feed was last read successfully (Unix time)",
            labels=labels,
        )
        for source in self.session.exec(select(FeedSource).where(FeedSource.enabled)):
            names = [str(source.id), source.name or source.config_name or source.url]
            up.add_metric(names, 1 if source.status == FeedStatus.ok else 0)
            failures.add_metric(names, source.consecutive_failures)
            if source.last_success_at is not None:
                success.add_metric(names, source.last_success_at.timestamp())
        yield from (up, failures, success)

    def _attention(self):
        from broadcast.incidents import service as incidents
        from broadcast.questions import service as questions

        now = utcnow()
        overdue = self.session.exec(select(func.count()).where(incidents.overdue(now))).one()
        waiting, oldest = questions.waiting(self.session)
        yield GaugeMetricFamily(
            "broadcast_incidents_overdue",
            "Open incidents whose promised next update is overdue",
            value=overdue,
        )
        yield GaugeMetricFamily(
            "broadcast_questions_waiting", "Residents' questions not yet answered", value=waiting
        )
        yield GaugeMetricFamily(
            "broadcast_questions_oldest_waiting_seconds",
            "How long the oldest unanswered question has waited (0: none waiting)",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )


def exposition(session: Session) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_DatabaseCollector(session))
    return generate_latest(REGISTRY) + generate_latest(scrape)
