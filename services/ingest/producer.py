"""A producer handle that gives up on a producer Kafka did not acknowledge in time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.common.bus import BrokerUnavailable, OutgoingRecord, ProducerHandle
from services.common.settings import Settings

log = logging.getLogger(__name__)


class AbandoningProducerHandle(ProducerHandle):
    """Drop the producer after an unacknowledged send; the next request builds a fresh one.

    Once a webhook got its 503, its records must not land later behind the sender's back
    (the sender retries, so a stuck idempotent batch would also block every later batch of
    its partition until delivery_timeout_ms, e.g. after a broker restart lost its state).
    """

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        # kafka-python waits 30 s for a first broker by default; the 503 must come within
        # the produce deadline even when the broker was already down.
        timeout_ms = int(settings.kafka_produce_timeout_seconds * 1000)
        super().__init__(settings, **{"bootstrap_timeout_ms": timeout_ms, **overrides})

    def send_all(
        self, records: Sequence[OutgoingRecord], *, timeout: float | None = None
    ) -> list[Any]:
        """Send and wait as ProducerHandle does; abandon the producer if Kafka did not ack."""
        producer = self.get()
        try:
            return super().send_all(records, timeout=timeout)
        except BrokerUnavailable:
            self._abandon(producer)
            raise

    def _abandon(self, failed: KafkaProducer) -> None:
        with self._lock:
            current = self._producer is failed
            if current:
                self._producer = None
        if not current:
            return  # another request already replaced it
        log.warning("kafka did not acknowledge in time: dropping the producer's pending records")
        # close(timeout=0) alone raises from its flush before it force-closes the sender.
        failed._sender.force_close()
        with contextlib.suppress(KafkaError):
            failed.close(timeout=0)
