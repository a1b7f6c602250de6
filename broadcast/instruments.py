"""What this process observes of its sends, in the registry ``/metrics`` exposes. Kept apart
from ``broadcast.metrics`` (which reads domain tables at scrape time) so the delivery layer can
report here without depending on the domain."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
