"""Publish queued actions to moderation.actions.v1 once Kafka acknowledges them.

Actions are written in the same transaction as their case (published_at null).
After a commit, and every second in the background, pending actions are sent in one
batch and marked published. On PostgreSQL the pending rows are locked with SKIP
LOCKED while they are sent, so two replicas never send the same action. A crash
between Kafka's acknowledgement and the mark sends that action again on restart with
the same `id`: consumers of the topic deduplicate on it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.common.kafka.producer import OutgoingRecord, ProducerHandle
from services.common.worker import BackgroundLoop
from services.moderation.models import ModerationAction
from services.moderation.telemetry import ACTIONS_PUBLISHED

log = logging.getLogger(__name__)

BATCH = 500
_local_lock = threading.Lock()  # SQLite has no row locks: one sender per process


def publish_pending(*, db: Engine, producer: ProducerHandle, topic: str) -> int:
    """Send pending actions in creation order and mark them published; return how many."""
    sent = 0
    with _local_lock:
        while True:
            with Session(db, expire_on_commit=False) as session:
                pending = session.exec(
                    select(ModerationAction)
                    .where(col(ModerationAction.published_at).is_(None))
                    .order_by(col(ModerationAction.created_at), col(ModerationAction.id))
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                ).all()
                if not pending:
                    return sent
                producer.send_all(
                    [
                        OutgoingRecord(topic, orjson.dumps(a.message()), a.group_id.encode())
                        for a in pending
                    ]
                )
                now = datetime.now(UTC)
                for action in pending:
                    action.published_at = now
                    session.add(action)
                session.commit()
            for action in pending:
                ACTIONS_PUBLISHED.labels(action.action).inc()
            sent += len(pending)
            if len(pending) < BATCH:
                return sent


class OutboxRelay(BackgroundLoop):
    """Publish what is left pending (crash, REST reversal, outage) every `interval` seconds."""

    def __init__(
        self, *, db: Engine, producer: ProducerHandle, topic: str, interval: float = 1.0
    ) -> None:
        super().__init__("outbox:moderation", interval=interval)
        self._db, self._producer, self._topic = db, producer, topic

    def step(self) -> None:
        publish_pending(db=self._db, producer=self._producer, topic=self._topic)
