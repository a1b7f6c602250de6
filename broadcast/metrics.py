"""Prometheus metrics: what the dispatcher observes in-process, and what the database knows at
scrape time (deliveries by channel and state, queue depth)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlmodel import Session

REGISTRY = CollectorRegistry(auto_describe=True)

PUBLISH_TO_SEND = Histogram(
    "broadcast_publish_to_send_seconds",
    "Time from publishing an update to a provider accepting it",
    ["channel"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
OUTCOMES = Counter(
    "broadcast_send_outcomes",
    "Send attempts by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)


def observe_latency(channel: str, seconds: float) -> None:
    PUBLISH_TO_SEND.labels(channel).observe(max(seconds, 0.0))


def count_outcome(channel: str, outcome: str) -> None:
    OUTCOMES.labels(channel, outcome).inc()


class _DatabaseCollector:
    def __init__(self, session: Session):
        self.session = session

    def collect(self):
        from broadcast.delivery.outbox import counts_by_state

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


def exposition(session: Session) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_DatabaseCollector(session))
    return generate_latest(REGISTRY) + generate_latest(scrape)
