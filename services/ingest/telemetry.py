"""The ingest service's own Prometheus metrics, and the counting of each delivery's outcome."""

from __future__ import annotations

import functools
from collections import Counter as Tally
from typing import Any

from prometheus_client import Counter, Histogram

from services.common.contracts.events import Event
from services.common.settings import Source

EVENTS = Counter(
    "qunyun_ingest_events_total",
    "Webhook events by source, platform, canonical type and outcome "
    "(accepted, duplicate, ignored, rejected).",
    ["source", "platform", "type", "outcome"],
)
BODY_BYTES = Histogram(
    "qunyun_ingest_webhook_body_bytes",
    "Size of webhook request bodies read, by platform.",
    ["platform"],
    buckets=(256, 1024, 4096, 16384, 65536, 262144, 524288, 1048576, 2097152),
)
DEDUP_COMMIT_FAILURES = Counter(
    "qunyun_ingest_dedup_commit_failures_total",
    "Batches Kafka acknowledged but Redis could not mark as seen (a redelivery may repeat them).",
)

# labels() takes a lock and builds a tuple on every call; the children never change, so
# each is looked up once.


@functools.lru_cache(maxsize=4096)
def _events_child(source_id: str, platform: str, event_type: str, outcome: str) -> Any:
    return EVENTS.labels(source_id, platform, event_type, outcome)


@functools.lru_cache(maxsize=64)
def body_bytes(platform: str) -> Any:
    """The body-size histogram of a platform."""
    return BODY_BYTES.labels(platform)


def count_events(source: Source, events: list[Event], outcome: str) -> None:
    """Count events of a delivery by type with an outcome (accepted, duplicate)."""
    if not events:
        return
    if len(events) == 1:
        _events_child(source.id, source.platform, events[0].type, outcome).inc()
        return
    for event_type, n in Tally(e.type for e in events).items():
        _events_child(source.id, source.platform, event_type, outcome).inc(n)


def count_ignored(source: Source, n: int) -> None:
    """Count platform events a delivery carried that are no member activity."""
    _events_child(source.id, source.platform, "none", "ignored").inc(n)


def count_rejected(source: Source) -> None:
    """Count a delivery refused as unauthenticated, oversized or invalid."""
    _events_child(source.id, source.platform, "unknown", "rejected").inc()
