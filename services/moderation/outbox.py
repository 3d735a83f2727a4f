"""Moderation's use of the kernel outbox: its relay, and publishing right after a commit.

Actions are queued in `moderation_outbox` with their case (see cases.py). The consumer
publishes its batch's actions as soon as the batch is committed, before the poll's
offsets are; routes wake the relay; the relay's one-second loop sends whatever a
crash or an outage left behind. Both count what Kafka acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from services.common.kafka.producer import ProducerHandle
from services.common.outbox import OutboxRecord, OutboxRelay, publish_pending
from services.moderation.models import ModerationOutbox
from services.moderation.telemetry import ACTIONS_PUBLISHED


def count_published(rows: Sequence[OutboxRecord]) -> None:
    """Count the actions Kafka acknowledged, by action."""
    for row in rows:
        ACTIONS_PUBLISHED.labels(row.payload["action"]).inc()


def publish_actions(*, db: Engine, producer: ProducerHandle) -> int:
    """Publish the queued actions this process can claim, now; return how many."""
    return publish_pending(
        engine=db, table=ModerationOutbox, producer=producer, on_published=count_published
    )


def action_relay(*, db: Engine, producer: ProducerHandle) -> OutboxRelay:
    """The background relay of moderation's outbox (/readyz names it outbox:moderation_outbox)."""
    return OutboxRelay(
        engine=db, table=ModerationOutbox, producer=producer, on_published=count_published
    )
