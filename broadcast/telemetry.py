"""What this process observes, as Prometheus instruments that any layer records into (send
latency and outcomes, feed polls). ``broadcast.metrics`` exposes them with what the database
knows at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


FEED_POLLS = Counter(
    "broadcast_feed_polls",
    "Feed polls by outcome (new, unchanged, not_modified, failed); on the scheduler's leader",
    ["outcome"],
    registry=REGISTRY,
)
LANE_OWNER = Gauge(
    "broadcast_lane_owner",
    "1 while this process owns the paced channel's lane (sends it), else 0",
    ["channel"],
    registry=REGISTRY,
)


def observe_latency(channel: str, seconds: float) -> None:
    PUBLISH_TO_SEND.labels(channel).observe(max(seconds, 0.0))


def count_outcome(channel: str, outcome: str) -> None:
    OUTCOMES.labels(channel, outcome).inc()


def count_poll(outcome: str) -> None:
    FEED_POLLS.labels(outcome).inc()


def set_lane_owner(channel: str, owner: bool) -> None:
    LANE_OWNER.labels(channel).set(1 if owner else 0)
