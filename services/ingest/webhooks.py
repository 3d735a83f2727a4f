"""One webhook delivery from verified bytes to acknowledged events, counted by outcome."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.events import Event, utcnow
from services.common.service import Resources
from services.common.settings import Source
from services.ingest.adapters import Adapter, feishu, generic, slack, telegram
from services.ingest.normalize import to_events
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


def _count(source: Source, events: list[Event], outcome: str) -> None:
    for event_type, n in Counter(e.type for e in events).items():
        EVENTS.labels(source.id, source.platform, event_type, outcome).inc(n)


def count_rejected(source: Source) -> None:
    """Count a delivery refused as unauthenticated, oversized or invalid."""
    EVENTS.labels(source.id, source.platform, "unknown", "rejected").inc()


def receive(
    *, source: Source, headers: Mapping[str, str], body: bytes, resources: Resources
) -> Receipt:
    """Verify, normalise, deduplicate and produce one delivery; raise on any refusal."""
    settings = resources.settings
    adapted = ADAPTERS[source.platform](source=source, headers=headers, body=body, now=time.time())
    if adapted.challenge is not None:
        return Receipt(challenge=adapted.challenge)
    if adapted.ignored:
        EVENTS.labels(source.id, source.platform, "none", "ignored").inc(adapted.ignored)
    if not adapted.raws:
        return Receipt(ignored=adapted.ignored)
    events = to_events(adapted.raws, source_id=source.id, received_at=utcnow(), locs=adapted.locs)
    assert resources.redis is not None
    published = publish_once(
        events=events,
        source_id=source.id,
        topic=settings.topic_events,
        client=resources.redis,
        producer=resources.producer,
        produce_timeout=settings.kafka_produce_timeout_seconds,
        ttl_seconds=settings.dedup_ttl_seconds,
    )
    _count(source, published.accepted, "accepted")
    _count(source, published.duplicates, "duplicate")
    return Receipt(
        accepted=len(published.accepted),
        duplicates=len(published.duplicates),
        ignored=adapted.ignored,
    )
