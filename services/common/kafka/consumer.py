"""The consumer loop every consuming service runs: poll a batch, handle it, then commit.

It follows the quix-streams loop: no auto-commit, offsets committed only after the
handler succeeded (the effect is durable), bounded retries for a bad record (then
`deadletter.v1` with headers naming where it came from), unbounded backoff while a
dependency is down, one typed error callback, clean stop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import tenacity
from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import ValidationError

from services.common.contracts.events import EVENT_ADAPTER, Event, InvalidEvent, decode_event
from services.common.heap import freeze_startup_heap
from services.common.kafka.errors import BrokerUnavailable, is_transient
from services.common.kafka.metrics import (
    BATCH_SECONDS,
    CONSUMED,
    CONSUMER_ERRORS,
    DEADLETTERS,
    LAG,
)
from services.common.kafka.producer import Header, OutgoingRecord, ProducerHandle
from services.common.settings import Settings
from services.common.worker import BackgroundLoop, Stopped

log = logging.getLogger(__name__)

# How long the broker may hold a fetch that finds no record. Apache Kafka answers a fetch
# as soon as a record arrives, whatever the wait; Tansu (`make run`, the tests, the
# benchmarks) looks again only at fractions of it, so the wait becomes latency on every
# hop (500 ms, kafka-python's default, costs ≈ 130 ms per hop at p50). While records flow
# the consumer asks with a short wait; each poll that comes back empty doubles it up to
# the default, so an idle consumer costs the broker no more than before.
FETCH_WAIT_FLOWING_MS = 5
FETCH_WAIT_IDLE_MS = 500


def next_fetch_wait(
    current_ms: int, *, flowing: bool, flowing_ms: int = FETCH_WAIT_FLOWING_MS
) -> int:
    """The fetch wait after a poll: short while records flow, doubling to the default after."""
    return flowing_ms if flowing else min(current_ms * 2, FETCH_WAIT_IDLE_MS)


class Record(NamedTuple):
    """A record as it came from Kafka.

    A NamedTuple, like ConsumedEvent: one is made per record on the hot path, and a frozen
    dataclass' __init__ (object.__setattr__ per field) costs three times as much.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class ConsumedEvent(NamedTuple):
    """A typed event with the record it came from."""

    record: Record
    event: Event


ErrorKind = Literal["decode", "handler", "transient", "poll", "commit", "deadletter"]


@dataclass(frozen=True)
class ConsumerError:
    """What went wrong in a consumer loop, handed to the error callback."""

    kind: ErrorKind
    group: str
    exception: BaseException
    records: Sequence[Record] = ()


BatchHandler = Callable[[list[ConsumedEvent]], None]
"""Handles one poll's events of community.events.v1; must be idempotent per event id."""
RecordHandler = Callable[[list[Record]], None]
"""Handles one poll's raw records (topics other than the event topic decode their own)."""
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


# pydantic-core's validator of the event union, called without TypeAdapter's Python wrapper
# (≈ 0.7 of ≈ 5.5 µs per record, every record of every consumer).
_validate_event_json = EVENT_ADAPTER.validator.validate_json


def decode_record(value: bytes | None) -> Event:
    """Decode a record of community.events.v1 as decode_event does, or raise InvalidEvent.

    A record the validator refuses goes through decode_event again, which words the error
    (the dead letter's `error` header) exactly as before.
    """
    if value is not None:
        try:
            event: Event = _validate_event_json(value)
            return event
        except ValidationError:
            pass
    return decode_event(value)


class ConsumerRunner(BackgroundLoop):
    """One consumer group's loop in a thread; `problem` (for /readyz) names what blocks it.

    `handler` takes decoded events of community.events.v1; `record_handler` instead takes
    raw records (for the outbound topics, whose payload types the handler decodes).

    `overlap=True` runs the handler in a second thread and polls and decodes the next batch
    while it works, for handlers that mostly wait on I/O (metrics waits on Redis for most of
    a batch): the wait then hides the poll and the decoding instead of adding to them. The
    guarantees stay: handler calls are one at a time and in poll order (the next batch is
    handed over only after the previous call returned), a batch's offsets are committed only
    after its handler returned, and a crash before that commit replays both batches. A
    rebalance in that next poll may give the in-flight batch's partitions to another consumer,
    which handles the batch again while this one finishes it (the commit here then fails):
    only for handlers idempotent per event whatever runs at the same time (metrics' script
    claims each event atomically).

    `fetch_wait_flowing_ms` is the fetch wait while records flow (FETCH_WAIT_FLOWING_MS
    unless given). Each fetch costs the loop and kafka-python's network thread CPU whether
    or not it brings a record; a consumer whose every poll pays a transaction (delivery)
    trades a few milliseconds of latency for fewer, fuller polls with a longer one.

    `commit_interval_ms` > 0 commits handled offsets at most that often (and when a poll
    comes back empty, before partitions are revoked, and on a clean stop) instead of after
    every batch: still only offsets whose handler returned, so a crash replays at most that
    long of handled records. Only for handlers for which a replay does nothing (delivery's
    insert is unique on the record id): each commit is a broker round trip per poll.
    """

    initial_problem = "starting"

    def __init__(
        self,
        *,
        settings: Settings,
        group_id: str,
        producer: ProducerHandle,
        handler: BatchHandler | None = None,
        record_handler: RecordHandler | None = None,
        topics: Sequence[str] | None = None,
        on_error: ErrorCallback = log_consumer_error,
        poll_timeout_ms: int = 500,
        max_backoff_seconds: float = 5.0,
        consumer_overrides: dict[str, Any] | None = None,
        overlap: bool = False,
        fetch_wait_flowing_ms: int = FETCH_WAIT_FLOWING_MS,
        commit_interval_ms: int = 0,
    ) -> None:
        super().__init__(f"consumer:{group_id}", max_backoff=max_backoff_seconds)
        if (handler is None) == (record_handler is None):
            raise ValueError("give exactly one of handler and record_handler")
        self.group_id = group_id
        self.topics = list(topics or [settings.topic_events])
        self._settings = settings
        self._handler = handler
        self._record_handler = record_handler
        self._producer = producer
        self._on_error = on_error
        self._poll_timeout_ms = poll_timeout_ms
        self._overrides = consumer_overrides or {}
        self._consumer: KafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._fetch_wait_flowing = fetch_wait_flowing_ms
        self._fetch_wait = fetch_wait_flowing_ms
        self._commit_interval = commit_interval_ms / 1000
        self._commit_due = 0.0
        # Handled offsets not committed yet (commit_interval_ms), with their last records.
        self._uncommitted: dict[TopicPartition, int] = {}
        self._uncommitted_records: list[Record] = []
        self._overlap = overlap
        self._worker: ThreadPoolExecutor | None = None  # made by the first step, ended by teardown
        # The batch the worker handles: its outcome, then what to commit once it is done.
        self._pending: tuple[Future[None], dict[TopicPartition, int], list[Record]] | None = None

    def start(self) -> None:
        """Export zero counters (so increase() sees the first dead letter), then run."""
        for topic in self.topics:
            DEADLETTERS.labels(self.group_id, topic)
            for outcome in ("processed", "deadlettered"):
                CONSUMED.labels(self.group_id, topic, outcome)
        freeze_startup_heap()
        super().start()

    def describe(self, exc: BaseException) -> str:
        return f"kafka: {type(exc).__name__}"

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
            "fetch_max_wait_ms": self._fetch_wait,
            "max_poll_interval_ms": 300000,
            "reconnect_backoff_max_ms": 1000,
            # Short, so a loop waiting for a broker that is down notices a stop quickly.
            "bootstrap_timeout_ms": 2000,
        }
        config.update(self._overrides)
        consumer = KafkaConsumer(**config)
        if self._commit_interval:
            consumer.subscribe(self.topics, listener=_CommitBeforeRevoke(self))
        else:
            consumer.subscribe(self.topics)
        return consumer

    def _report(self, kind: ErrorKind, exc: BaseException, records: Sequence[Record] = ()) -> None:
        CONSUMER_ERRORS.labels(self.group_id, kind).inc()
        try:
            self._on_error(ConsumerError(kind, self.group_id, exc, records))
        except Exception:  # noqa: BLE001 - a faulty callback must not kill the loop
            log.exception("consumer error callback failed")

    def step(self) -> None:
        """Poll once; handle and commit what came. Kafka errors are retried by the loop."""
        if self._pending is not None and self._pending[0].done():
            self._finish_pending()  # commit now rather than after a poll that may wait
        try:
            if self._consumer is None:
                self._consumer = self._build_consumer()
            polled = self._consumer.poll(
                timeout_ms=self._poll_timeout_ms,
                max_records=self._settings.kafka_max_poll_records,
            )
        except Exception as exc:
            self._report("poll", exc)
            raise
        self.problem = None
        records = [
            Record(tp.topic, tp.partition, m.offset, m.key, m.value)
            for tp, messages in polled.items()
            for m in messages
        ]
        self._adapt_fetch_wait(flowing=bool(records))
        if self._uncommitted and (not records or time.monotonic() >= self._commit_due):
            self.flush_commits()
        # Records of a partition come in offset order: its last one is what to commit.
        offsets = {tp: messages[-1].offset + 1 for tp, messages in polled.items() if messages}
        if self._overlap:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, f"handler:{self.group_id}")
            batch = self._decode(records) if records else None
            self._finish_pending()
            if batch is not None:
                self._pending = (self._worker.submit(self._handle_batch, batch), offsets, records)
            elif records:
                self._commit(offsets, records)  # every record dead-lettered
        elif records:
            batch = self._decode(records)
            if batch is not None:
                self._handle_batch(batch)
            self._commit(offsets, records)
        self._export_lag()

    def _finish_pending(self) -> None:
        """Wait for the worker's batch and commit it (its exception, only Stopped or one met
        while stopping, propagates: nothing is committed and the records come back)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            future, offsets, records = pending
            future.result()
            self._commit(offsets, records)

    def _adapt_fetch_wait(self, *, flowing: bool) -> None:
        """Short fetch waits while records flow, back to the default as the topic goes quiet."""
        if "fetch_max_wait_ms" in self._overrides:
            return
        wait = next_fetch_wait(
            self._fetch_wait, flowing=flowing, flowing_ms=self._fetch_wait_flowing
        )
        if wait == self._fetch_wait:
            return
        self._fetch_wait = wait
        # kafka-python reads the fetcher's own copy of its config for every fetch request it
        # builds, and has no public setter for it.
        fetcher = getattr(self._consumer, "_fetcher", None)
        config = getattr(fetcher, "config", None)
        if isinstance(config, dict):
            config["fetch_max_wait_ms"] = wait

    def teardown(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(Exception):  # Stopped too: then nothing is committed
                self._finish_pending()
            self._pending = None
        if self._uncommitted and self._consumer is not None:
            with contextlib.suppress(Exception):
                self.flush_commits()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001
                log.debug("consumer close failed", exc_info=True)
            self._consumer = None

    def _decode(self, records: list[Record]) -> tuple[list[Any], list[Record]] | None:
        """Return the batch for the handler with its records; dead-letter undecodable ones."""
        if self._record_handler is not None:
            return records, records
        events: list[ConsumedEvent] = []
        for record in records:
            try:
                events.append(ConsumedEvent(record, decode_record(record.value)))
            except InvalidEvent as exc:
                self._report("decode", exc, [record])
                self._dead_letter(record, exc)
        return (events, [e.record for e in events]) if events else None

    def _handle_batch(self, batch: tuple[list[Any], list[Record]]) -> None:
        with BATCH_SECONDS.labels(self.group_id).time():
            self._handle(*batch)

    def _call(self, items: list[Any]) -> None:
        if self._record_handler is not None:
            self._record_handler(items)
        else:
            assert self._handler is not None
            self._handler(items)

    def _handle(self, items: list[Any], records: list[Record]) -> None:
        """Handle a batch; retry while a dependency is down; isolate and dead-letter bad records."""
        bad_record_retries = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: (
                    isinstance(exc, Exception)
                    and not isinstance(exc, Stopped)
                    and not self.stopping
                )
            ),
            stop=tenacity.stop_after_attempt(self._settings.consumer_max_retries + 1),
            wait=tenacity.wait_incrementing(start=0.05, increment=0.05),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in bad_record_retries:
                with attempt:
                    try:
                        self._call_while_dependencies_down(items, records)
                    except Stopped:
                        raise
                    except Exception as exc:
                        self._report("handler", exc, records)
                        raise
        except Exception as exc:
            if self.stopping or isinstance(exc, Stopped):
                raise
            if len(items) == 1:
                self._dead_letter(records[0], exc)
                return
            for item, record in zip(items, records, strict=True):
                self._handle([item], [record])
            return
        self.problem = None
        # One counter update per topic and batch: a labels() lookup per record cost more
        # than decoding the record.
        for topic, count in Counter(record.topic for record in records).items():
            CONSUMED.labels(self.group_id, topic, "processed").inc(count)

    def _call_while_dependencies_down(self, items: list[Any], records: list[Record]) -> None:
        def down(exc: BaseException) -> None:
            self.problem = f"dependency down: {type(exc).__name__}"
            self._report("transient", exc, records)

        for attempt in self.retrying(retry_if=is_transient, on_retry=down):
            with attempt:
                self._call(items)

    def _dead_letter(self, record: Record, exc: BaseException) -> None:
        headers: list[Header] = [
            ("topic", record.topic.encode()),
            ("partition", str(record.partition).encode()),
            ("offset", str(record.offset).encode()),
            ("consumer_group", self.group_id.encode()),
            ("error", f"{type(exc).__name__}: {exc}"[:1000].encode("utf-8", "replace")),
        ]
        letter = OutgoingRecord(
            self._settings.topic_deadletter, record.value or b"", record.key, headers
        )

        def unavailable(err: BaseException) -> None:
            self.problem = "kafka: dead-letter topic unavailable"
            self._report("deadletter", err, [record])

        for attempt in self.retrying(
            retry_if=lambda e: isinstance(e, BrokerUnavailable), on_retry=unavailable
        ):
            with attempt:
                self._producer.send_all([letter])
        DEADLETTERS.labels(self.group_id, record.topic).inc()
        CONSUMED.labels(self.group_id, record.topic, "deadlettered").inc()

    def _commit(self, next_offsets: dict[TopicPartition, int], records: list[Record]) -> None:
        """Commit each partition's next offset (`records` only name them in an error report),
        now or, with commit_interval_ms, once the interval has passed."""
        if self._commit_interval:
            self._uncommitted.update(next_offsets)
            self._uncommitted_records = records
            if time.monotonic() >= self._commit_due:
                self.flush_commits()
            return
        self._commit_now(next_offsets, records)

    def flush_commits(self) -> None:
        """Commit the handled offsets held back by commit_interval_ms, of the partitions this
        consumer holds. Those of a partition another consumer holds now are dropped: it reads
        them again from the last commit (the handler does nothing twice), where committing
        them late could move its offset back."""
        offsets, records = self._uncommitted, self._uncommitted_records
        self._uncommitted, self._uncommitted_records = {}, []
        self._commit_due = time.monotonic() + self._commit_interval
        held = self._consumer.assignment() if self._consumer is not None else set()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in held}
        if offsets:
            self._commit_now(offsets, records)

    def commit_before_revoke(self) -> None:
        """Flush held-back commits as partitions are revoked, where the client allows it.

        kafka-python 3 calls rebalance listeners on its network thread, where a blocking
        commit raises RuntimeError. Then the offsets stay held back: after the rebalance,
        those of the partitions this consumer still holds are committed by the next flush
        (an empty poll or the interval); the others are left to their new owner. (Raising
        from the listener failed the poll, and the offsets it had taken were lost: a
        partition that got no further record kept its lag.)"""
        offsets, records = dict(self._uncommitted), list(self._uncommitted_records)
        try:
            self.flush_commits()
        except RuntimeError:
            self._uncommitted = {**offsets, **self._uncommitted}
            self._uncommitted_records = records + self._uncommitted_records

    def _commit_now(self, next_offsets: dict[TopicPartition, int], records: list[Record]) -> None:
        offsets = {tp: OffsetAndMetadata(nxt, "", -1) for tp, nxt in next_offsets.items()}
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


class _CommitBeforeRevoke(ConsumerRebalanceListener):
    """Commits what a runner holds back (commit_interval_ms) before its partitions go."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._runner.commit_before_revoke()

    def on_partitions_assigned(self, assigned: Any) -> None:
        pass
