"""The Kafka bus on kafka-python: a lazily built producer and a batch consumer runner.

The runner follows the quix-streams loop: no auto-commit, offsets committed only
after the handler succeeded, bounded retries for bad records (then `deadletter.v1`
with headers), unbounded backoff while a dependency is down, clean stop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from services.common.events import Event, InvalidEvent, decode_event
from services.common.settings import Settings

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "qunyun_consumer_records_total",
    "Records taken from Kafka by a consumer group, by outcome (processed, deadlettered).",
    ["group", "topic", "outcome"],
)
CONSUMER_ERRORS = Counter(
    "qunyun_consumer_errors_total",
    "Errors met by a consumer loop, by kind (decode, handler, transient, poll, commit).",
    ["group", "kind"],
)
DEADLETTERS = Counter(
    "qunyun_deadletter_records_total",
    "Records a consumer group sent to the dead-letter topic.",
    ["group", "topic"],
)
LAG = Gauge(
    "qunyun_consumer_lag_messages",
    "Records in a partition not yet processed by the consumer group (high watermark - position).",
    ["group", "topic", "partition"],
)
BATCH_SECONDS = Histogram(
    "qunyun_consumer_batch_duration_seconds",
    "Time a consumer group's handler took for one poll's batch.",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_SECONDS = Histogram(
    "qunyun_kafka_produce_duration_seconds",
    "Time from send to Kafka acknowledgement for one produce call (a batch waits once).",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_ERRORS = Counter(
    "qunyun_kafka_produce_errors_total",
    "Produce calls that Kafka did not acknowledge in time.",
    ["topic"],
)


class BrokerUnavailable(RuntimeError):
    """Kafka could not take the records within the deadline."""


class TransientError(RuntimeError):
    """A failure that retrying later will fix (a dependency is down)."""


def is_transient(exc: BaseException) -> bool:
    """Tell whether an exception means a dependency is down rather than a bad record."""
    import redis.exceptions
    import sqlalchemy.exc

    transient = (
        TransientError,
        BrokerUnavailable,
        KafkaError,
        ConnectionError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        redis.exceptions.BusyLoadingError,
        redis.exceptions.ReadOnlyError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.DisconnectionError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.TimeoutError,
    )
    return isinstance(exc, transient)


Header = tuple[str, bytes]


@dataclass(frozen=True)
class OutgoingRecord:
    """One record to produce."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[Header] = field(default_factory=list)


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

    def send_all(
        self, records: Sequence[OutgoingRecord], *, timeout: float | None = None
    ) -> list[Any]:
        """Send every record and wait once until Kafka acknowledged all; raise BrokerUnavailable."""
        if not records:
            return []
        timeout = timeout or self._settings.kafka_produce_timeout_seconds
        deadline = time.monotonic() + timeout
        producer = self.get()
        topic = records[0].topic
        errors = PRODUCE_ERRORS.labels(topic)  # exported as 0 from the first produce on
        started = time.perf_counter()
        try:
            futures = [
                producer.send(r.topic, value=r.value, key=r.key, headers=r.headers or None)
                for r in records
            ]
            results = [f.get(timeout=max(deadline - time.monotonic(), 0.001)) for f in futures]
        except (KafkaError, TimeoutError) as exc:
            errors.inc()
            self.abandon(producer)
            raise BrokerUnavailable(f"Kafka did not acknowledge in {timeout:g}s") from exc
        PRODUCE_SECONDS.labels(topic).observe(time.perf_counter() - started)
        return results

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

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[Header] | None = None,
    ) -> Any:
        """Send one record and wait for its acknowledgement."""
        return self.send_all([OutgoingRecord(topic, value, key, headers or [])])[0]

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


# ApiVersions v0 with correlation id 1 and client id "qy-ready": the cheapest request every
# Kafka-protocol broker answers. A TCP connect alone succeeds even against a frozen broker.
_API_VERSIONS_REQUEST = struct.pack(">hhih", 18, 0, 1, 8) + b"qy-ready"
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS_REQUEST)) + _API_VERSIONS_REQUEST


def _broker_answers(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_API_VERSIONS_FRAME)
        header = sock.recv(8)
        if len(header) < 8 or struct.unpack(">ii", header)[1] != 1:
            raise ConnectionError("no Kafka answer")


def kafka_reachable(settings: Settings, timeout: float = 1.0) -> str | None:
    """Return None when a bootstrap server answers a Kafka ApiVersions request, else why not."""
    errors = []
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            _broker_answers(host.strip("[]"), int(port), timeout)
            return None
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {type(exc).__name__}")
    return "unreachable (" + ", ".join(errors) + ")"


def ensure_topics(settings: Settings, topics: Iterable[str] | None = None) -> None:
    """Create the contract's topics if they do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in (topics or settings.topics) if t not in existing]
        for topic in wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(
                            topic, num_partitions=settings.kafka_partitions, replication_factor=1
                        )
                    ]
                )
    finally:
        admin.close()


@dataclass(frozen=True)
class Record:
    """A record as it came from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ConsumedEvent:
    """A typed event with the record it came from."""

    record: Record
    event: Event


@dataclass(frozen=True)
class ConsumerError:
    """What went wrong in a consumer loop, handed to the error callback."""

    kind: Literal["decode", "handler", "transient", "poll", "commit", "deadletter"]
    group: str
    exception: BaseException
    records: Sequence[Record] = ()


BatchHandler = Callable[[list[ConsumedEvent]], None]
ErrorCallback = Callable[[ConsumerError], None]


def log_consumer_error(error: ConsumerError) -> None:
    """Log a consumer error without record contents."""
    where = ", ".join(f"{r.topic}/{r.partition}@{r.offset}" for r in error.records[:5])
    log.warning(
        "consumer %s: %s error %s: %s %s",
        error.group,
        error.kind,
        type(error.exception).__name__,
        str(error.exception)[:300],
        where,
    )


class _Stopped(Exception):
    pass


class ConsumerRunner:
    """Run one consumer group's loop in a thread: poll a batch, handle it, then commit."""

    def __init__(
        self,
        *,
        settings: Settings,
        group_id: str,
        handler: BatchHandler,
        producer: ProducerHandle,
        topics: Sequence[str] | None = None,
        on_error: ErrorCallback = log_consumer_error,
        poll_timeout_ms: int = 500,
        max_backoff_seconds: float = 5.0,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.group_id = group_id
        self.topics = list(topics or [settings.topic_events])
        self._settings = settings
        self._handler = handler
        self._producer = producer
        self._on_error = on_error
        self._poll_timeout_ms = poll_timeout_ms
        self._max_backoff = max_backoff_seconds
        self._overrides = consumer_overrides or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}
        self.problem: str | None = "not started"

    def start(self) -> None:
        """Run the loop in a background thread."""
        # Export zeros before the first record so increase()/rate() see the first dead letter.
        for topic in self.topics:
            DEADLETTERS.labels(self.group_id, topic)
            for outcome in ("processed", "deadlettered"):
                CONSUMED.labels(self.group_id, topic, outcome)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"consumer-{self.group_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the loop to finish its batch, close the consumer and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _build_consumer(self) -> KafkaConsumer:
        session = self._settings.kafka_session_timeout_ms
        config: dict[str, Any] = {
            "bootstrap_servers": self._settings.bootstrap_servers,
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": session,
            "heartbeat_interval_ms": max(session // 3, 100),
            "max_poll_records": self._settings.kafka_max_poll_records,
            "max_poll_interval_ms": 300000,
            "reconnect_backoff_max_ms": 1000,
            # Short, so a loop waiting for a broker that is down notices a stop quickly.
            "bootstrap_timeout_ms": 2000,
        }
        config.update(self._overrides)
        consumer = KafkaConsumer(**config)
        consumer.subscribe(self.topics)
        return consumer

    def _report(self, kind: Any, exc: BaseException, records: Sequence[Record] = ()) -> None:
        CONSUMER_ERRORS.labels(self.group_id, kind).inc()
        try:
            self._on_error(ConsumerError(kind, self.group_id, exc, records))
        except Exception:  # noqa: BLE001 - a faulty callback must not kill the loop
            log.exception("consumer error callback failed")

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def run(self) -> None:
        """Poll, handle and commit until stopped."""
        backoff = 0.2
        try:
            while not self._stop.is_set():
                if self._consumer is None:
                    try:
                        self._consumer = self._build_consumer()
                        backoff = 0.2
                    except Exception as exc:  # noqa: BLE001
                        self.problem = f"kafka: {type(exc).__name__}"
                        self._report("poll", exc)
                        self._sleep(backoff)
                        backoff = min(backoff * 2, self._max_backoff)
                        continue
                try:
                    polled = self._consumer.poll(
                        timeout_ms=self._poll_timeout_ms,
                        max_records=self._settings.kafka_max_poll_records,
                    )
                except KafkaError as exc:
                    self.problem = f"kafka: {type(exc).__name__}"
                    self._report("poll", exc)
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = 0.2
                self.problem = None
                records = [
                    Record(tp.topic, tp.partition, m.offset, m.key, m.value)
                    for tp, messages in polled.items()
                    for m in messages
                ]
                if records:
                    self._process(records)
                    self._commit(records)
                self._export_lag()
        except _Stopped:
            pass
        finally:
            if self._consumer is not None:
                try:
                    self._consumer.close(autocommit=False)
                except Exception:  # noqa: BLE001
                    log.debug("consumer close failed", exc_info=True)
                self._consumer = None
            self.problem = "stopped"

    def _process(self, records: list[Record]) -> None:
        events: list[ConsumedEvent] = []
        for record in records:
            try:
                events.append(ConsumedEvent(record, decode_event(record.value)))
            except InvalidEvent as exc:
                self._report("decode", exc, [record])
                self._dead_letter(record, exc)
        if events:
            started = time.perf_counter()
            self._handle(events)
            BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)

    def _handle(self, events: list[ConsumedEvent]) -> None:
        attempts = 0
        backoff = 0.2
        while True:
            try:
                self._handler(events)
                self.problem = None
                for ev in events:
                    CONSUMED.labels(self.group_id, ev.record.topic, "processed").inc()
                return
            except Exception as exc:  # noqa: BLE001
                records = [e.record for e in events]
                if self._stop.is_set():
                    raise _Stopped from exc
                if is_transient(exc):
                    self.problem = f"dependency down: {type(exc).__name__}"
                    self._report("transient", exc, records)
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                attempts += 1
                self._report("handler", exc, records)
                if attempts <= self._settings.consumer_max_retries:
                    self._sleep(0.05 * attempts)
                    continue
                if len(events) == 1:
                    self._dead_letter(events[0].record, exc)
                    return
                for one in events:
                    self._handle([one])
                return

    def _dead_letter(self, record: Record, exc: BaseException) -> None:
        headers: list[Header] = [
            ("topic", record.topic.encode()),
            ("partition", str(record.partition).encode()),
            ("offset", str(record.offset).encode()),
            ("consumer_group", self.group_id.encode()),
            ("error", f"{type(exc).__name__}: {exc}"[:1000].encode("utf-8", "replace")),
        ]
        backoff = 0.2
        while True:
            try:
                self._producer.send_all(
                    [
                        OutgoingRecord(
                            self._settings.topic_deadletter,
                            record.value or b"",
                            record.key,
                            headers,
                        )
                    ]
                )
                DEADLETTERS.labels(self.group_id, record.topic).inc()
                CONSUMED.labels(self.group_id, record.topic, "deadlettered").inc()
                return
            except BrokerUnavailable as err:
                self.problem = "kafka: dead-letter topic unavailable"
                self._report("deadletter", err, [record])
                self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _commit(self, records: list[Record]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            nxt = r.offset + 1
            if tp not in offsets or offsets[tp].offset < nxt:
                offsets[tp] = OffsetAndMetadata(nxt, "", -1)
        assert self._consumer is not None
        try:
            self._consumer.commit(offsets)
            for tp, om in offsets.items():
                self._positions[tp] = om.offset
        except KafkaError as exc:
            # Records come back after the rebalance; idempotent handlers absorb them.
            self._report("commit", exc, records)

    def _export_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        # Partitions another process took over: stop exporting their (now stale) lag here.
        for tp in [tp for tp in self._positions if tp not in assigned]:
            del self._positions[tp]
            with contextlib.suppress(KeyError):
                LAG.remove(self.group_id, tp.topic, str(tp.partition))
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = self._positions.get(tp)
            if position is None:
                continue
            LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(highwater - position, 0))
