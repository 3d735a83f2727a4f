"""The metrics consumer group: each poll's events (and moderation's actions) applied to Redis."""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from services.common.contracts.actions import ModerationAction
from services.common.kafka.consumer import ConsumedEvent, Record
from services.metrics.apply import Applier, ApplyResult
from services.metrics.telemetry import (
    ACTIONS_INVALID,
    BATCH_APPLY_SECONDS,
    DELETED_MESSAGES,
    DUPLICATES_SKIPPED,
    EVENTS_APPLIED,
    TOO_OLD_SKIPPED,
)

log = logging.getLogger(__name__)


def _export(result: ApplyResult) -> None:
    for kind, count in result.applied.items():
        if count:
            EVENTS_APPLIED.labels(kind).inc(count)
    if result.duplicates:
        DUPLICATES_SKIPPED.inc(result.duplicates)
    if result.too_old:
        TOO_OLD_SKIPPED.inc(result.too_old)
    if result.deleted_unseen:
        DELETED_MESSAGES.labels("before").inc(result.deleted_unseen)
    if result.deleted_subtracted:
        DELETED_MESSAGES.labels("after").inc(result.deleted_subtracted)


def handle_batch(events: list[ConsumedEvent], *, applier: Applier) -> None:
    """Apply one poll's events; return only once Redis has them all."""
    started = time.perf_counter()
    result = applier.apply([e.event for e in events])
    BATCH_APPLY_SECONDS.observe(time.perf_counter() - started)
    _export(result)


def handle_actions(records: list[Record], *, applier: Applier) -> None:
    """Apply one poll of moderation.actions.v1 (deletions, kicks, bans, unbans)."""
    actions = []
    for record in records:
        try:
            actions.append(ModerationAction.model_validate_json(record.value or b""))
        except ValidationError:
            ACTIONS_INVALID.inc()
            log.warning("skipped an invalid action at %s/%s", record.partition, record.offset)
    _export(applier.apply_actions(actions))
