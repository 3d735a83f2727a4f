"""The producer every service shares: built on first use, acks=all, bounded deadlines.

`send_all` is the batch path (the outbox relay sends up to 500 records a call): it picks
each keyed record's partition itself, exactly as kafka-python's default partitioner would
(murmur2 of the key bytes over the topic's sorted partitions, as Java's client does), with
the hash kept per key. kafka-python's partitioner copies and sorts the topic's partition
set and hashes the key in pure Python on every send: two fifths of a send's CPU. It then
waits for the last record of each partition (the idempotent producer sends a partition's
batches one at a time, in order, so the others are done by then) and checks every record's
outcome, waiting only for one that is somehow not done yet.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from services.common.kafka.errors import BrokerUnavailable
from services.common.kafka.metrics import PRODUCE_ERRORS, PRODUCE_SECONDS
from services.common.settings import Settings

log = logging.getLogger(__name__)

Header = tuple[str, bytes]


class OutgoingRecord(NamedTuple):
    """One record to produce (a tuple: cheap to build by the hundred)."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[Header] | None = None


_HASHES: dict[bytes, int] = {}
_HASHES_KEPT = 100_000  # keys (group ids) whose hash is kept; beyond, the cache starts over


def _key_hash(key: bytes) -> int:
    """murmur2(key) & 0x7fffffff, as kafka-python's (and Java's) default partitioner."""
    h = _HASHES.get(key)
    if h is None:
        if len(_HASHES) >= _HASHES_KEPT:
            _HASHES.clear()
        h = _HASHES[key] = murmur2(key) & 0x7FFFFFFF
    return h


def _send(
    producer: KafkaProducer, records: Sequence[OutgoingRecord]
) -> tuple[list[Any], list[Any]]:
    """Hand the records to kafka-python in order; return every future, and those to wait
    for: the last of each partition, and each one whose partition kafka-python picks."""
    own_partitions = type(producer.config.get("partitioner")) is DefaultPartitioner
    partitions: dict[str, list[int]] = {}
    futures: list[Any] = []
    last: dict[tuple[str, int], Any] = {}
    unknown: list[Any] = []
    send = producer.send
    for topic, value, key, headers in records:
        partition = None
        if key is not None and own_partitions:
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(producer.partitions_for(topic))
            partition = known[_key_hash(key) % len(known)]
        future = send(topic, value=value, key=key, headers=headers, partition=partition)
        futures.append(future)
        if partition is None:
            unknown.append(future)
        else:
            last[(topic, partition)] = future
    return futures, [*last.values(), *unknown]


class ProducerHandle:
    """A KafkaProducer built on first use, so services start while the broker is down."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _build(self) -> KafkaProducer:
        timeout_ms = int(self._settings.kafka_produce_timeout_seconds * 1000)
        config: dict[str, Any] = {
            "bootstrap_servers": self._settings.bootstrap_servers,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 2,
            "batch_size": 256 * 1024,
            "max_request_size": 4 * 1024 * 1024,
            "max_block_ms": timeout_ms,
            # kafka-python waits 30 s for a first broker by default; callers need an answer
            # within the produce deadline even when the broker is down at start.
            "bootstrap_timeout_ms": timeout_ms,
            "request_timeout_ms": max(timeout_ms, 3000),
            "reconnect_backoff_max_ms": 1000,
            # Nobody reads kafka-python's own metrics (ours are Prometheus'); kept, its
            # sensors cost the sender thread CPU on every batch and request.
            "metrics_enabled": False,
        }
        config.update(self._overrides)
        return KafkaProducer(**config)

    def get(self) -> KafkaProducer:
        """Return the producer, building it now if needed; raise BrokerUnavailable."""
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = self._build()
                except Exception as exc:
                    raise BrokerUnavailable(
                        f"cannot connect to Kafka: {type(exc).__name__}"
                    ) from exc
            return self._producer

    def send_all(self, records: Sequence[OutgoingRecord], *, timeout: float | None = None) -> None:
        """Send every record, in order, and return once Kafka acknowledged all of them.

        Raise BrokerUnavailable when one is not acknowledged within the timeout (the
        producer is then abandoned, so none of them lands later behind the caller's back).
        """
        if not records:
            return
        timeout = timeout or self._settings.kafka_produce_timeout_seconds
        deadline = time.monotonic() + timeout
        producer = self.get()
        topic = records[0].topic
        errors = PRODUCE_ERRORS.labels(topic)  # exported as 0 from the first produce on
        started = time.perf_counter()
        try:
            futures, last = _send(producer, records)
            for future in last:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
            for future in futures:
                if not future.is_done or future.exception is not None:
                    future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except (KafkaError, TimeoutError) as exc:
            errors.inc()
            self.abandon(producer)
            raise BrokerUnavailable(f"Kafka did not acknowledge in {timeout:g}s") from exc
        PRODUCE_SECONDS.labels(topic).observe(time.perf_counter() - started)

    def abandon(self, failed: KafkaProducer) -> None:
        """Drop a producer and its unsent records; the next get() builds a fresh one.

        Records a caller was told failed must not land later behind its back (the sender
        would retry them, and a stuck idempotent batch blocks its partition until
        delivery_timeout_ms, e.g. after a broker restart lost its state); the caller
        retries them itself.
        """
        with self._lock:
            current = self._producer is failed
            if current:
                self._producer = None
        if not current:
            return  # another caller already replaced it
        log.warning("kafka did not acknowledge in time: dropping the producer's pending records")
        # close(timeout=0) alone raises from its flush before it force-closes the sender.
        failed._sender.force_close()
        with contextlib.suppress(KafkaError):
            failed.close(timeout=0)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is pending and close the producer."""
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.flush(timeout=timeout)
                    self._producer.close(timeout=timeout)
                except KafkaError:
                    log.warning("producer close: records still pending after %ss", timeout)
                    self._producer._sender.force_close()
                    with contextlib.suppress(KafkaError):
                        self._producer.close(timeout=0)
                self._producer = None
