"""One webhook delivery from verified bytes to acknowledged events, counted by outcome."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.contracts.events import Event, utcnow
from services.common.settings import Settings, Source
from services.ingest.adapters import Adapter, feishu, generic, slack, telegram
from services.ingest.dedup import Dedup
from services.ingest.normalize import to_events
from services.ingest.producer import ProduceThread
from services.ingest.publish import publish_once
from services.ingest.telemetry import EVENTS

ADAPTERS: dict[str, Adapter] = {
    "generic": generic.adapt,
    "slack": slack.adapt,
    "telegram": telegram.adapt,
    "feishu": feishu.adapt,
}


@dataclass(frozen=True)
class Receipt:
    """What the webhook's sender is told."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    challenge: dict[str, Any] | None = None


@functools.lru_cache(maxsize=4096)
def _events_child(source_id: str, platform: str, event_type: str, outcome: str) -> Any:
    # labels() takes a lock and builds a tuple on every call; the children never change.
    return EVENTS.labels(source_id, platform, event_type, outcome)


def _count(source: Source, events: list[Event], outcome: str) -> None:
    if len(events) == 1:
        _events_child(source.id, source.platform, events[0].type, outcome).inc()
        return
    for event_type, n in Counter(e.type for e in events).items():
        _events_child(source.id, source.platform, event_type, outcome).inc(n)


def count_rejected(source: Source) -> None:
    """Count a delivery refused as unauthenticated, oversized or invalid."""
    _events_child(source.id, source.platform, "unknown", "rejected").inc()


@dataclass(frozen=True)
class Delivery:
    """A verified delivery's canonical events, ready to deduplicate and produce."""

    events: list[Event]
    ignored: int


def prepare(*, source: Source, headers: Mapping[str, str], body: bytes) -> Receipt | Delivery:
    """Verify and normalise one delivery (CPU only, no I/O); raise on any refusal.

    Returns the final receipt when there is nothing to produce (a challenge, only ignored
    platform events), else the validated events.
    """
    adapted = ADAPTERS[source.platform](source=source, headers=headers, body=body, now=time.time())
    if adapted.challenge is not None:
        return Receipt(challenge=adapted.challenge)
    if adapted.ignored:
        _events_child(source.id, source.platform, "none", "ignored").inc(adapted.ignored)
    if not adapted.raws:
        return Receipt(ignored=adapted.ignored)
    events = to_events(adapted.raws, source_id=source.id, received_at=utcnow(), locs=adapted.locs)
    return Delivery(events, adapted.ignored)


@dataclass
class Runtime:
    """Ingest's async clients, built in the app's lifespan."""

    dedup: Dedup
    producer: ProduceThread
    sources: dict[str, Source]


async def publish(
    *, source: Source, delivery: Delivery, runtime: Runtime, settings: Settings
) -> Receipt:
    """Deduplicate and produce a prepared delivery; answer once Kafka acknowledged it."""
    published = await publish_once(
        events=delivery.events,
        source_id=source.id,
        topic=settings.topic_events,
        dedup=runtime.dedup,
        producer=runtime.producer,
        produce_timeout=settings.kafka_produce_timeout_seconds,
    )
    _count(source, published.accepted, "accepted")
    _count(source, published.duplicates, "duplicate")
    return Receipt(
        accepted=len(published.accepted),
        duplicates=len(published.duplicates),
        ignored=delivery.ignored,
    )
