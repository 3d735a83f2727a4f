"""The metrics consumer group: each poll's events applied to Redis in one pipeline."""

from __future__ import annotations

import time

from services.common.kafka.consumer import ConsumedEvent
from services.metrics.apply import Applier
from services.metrics.telemetry import (
    BATCH_APPLY_SECONDS,
    DUPLICATES_SKIPPED,
    EVENTS_APPLIED,
    TOO_OLD_SKIPPED,
)


def handle_batch(events: list[ConsumedEvent], *, applier: Applier) -> None:
    """Apply one poll's events; return only once Redis has them all."""
    started = time.perf_counter()
    result = applier.apply([e.event for e in events])
    BATCH_APPLY_SECONDS.observe(time.perf_counter() - started)
    for kind, count in result.applied.items():
        if count:
            EVENTS_APPLIED.labels(kind).inc(count)
    if result.duplicates:
        DUPLICATES_SKIPPED.inc(result.duplicates)
    if result.too_old:
        TOO_OLD_SKIPPED.inc(result.too_old)
