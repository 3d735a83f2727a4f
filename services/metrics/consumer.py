"""The metrics consumer group: each poll's events (and moderation's actions) applied to Redis."""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from services.common.contracts.actions import ModerationAction
from services.common.kafka.consumer import Record
from services.metrics.apply import Applier, ApplyResult
from services.metrics.facts import decode_facts
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


def handle_events(records: list[Record], *, applier: Applier) -> None:
    """Apply one poll's records of community.events.v1; return only once Redis has them all.

    Records are decoded here (facts.decode_facts: lean for the usual shapes, the kernel's
    decode_record for the rest), not by the runner. A batch holding an invalid record is
    refused before anything is applied: the runner retries it, then handles its records one
    by one, applying the valid ones and dead-lettering the invalid one with InvalidEvent's
    message, as its own decoding would have.
    """
    started = time.perf_counter()
    result = applier.apply_facts([decode_facts(record.value) for record in records])
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
