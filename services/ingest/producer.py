"""Produce from the event loop through one thread; Kafka's acks resolve asyncio futures."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from starlette.concurrency import run_in_threadpool

from services.common.kafka.errors import BrokerUnavailable
from services.common.kafka.metrics import PRODUCE_ERRORS, PRODUCE_SECONDS
from services.common.kafka.producer import OutgoingRecord, ProducerHandle
from services.common.worker import BackgroundLoop

log = logging.getLogger(__name__)


class _Job:
    """One request's records on their way through the produce thread."""

    __slots__ = (
        "cancelled",
        "count_lock",
        "future",
        "lock",
        "producer",
        "records",
        "waiting",
        "wakeups",
    )

    def __init__(
        self,
        records: Sequence[OutgoingRecord],
        wakeups: _Wakeups,
        future: asyncio.Future[None],
    ) -> None:
        self.records = records
        self.wakeups = wakeups
        self.future = future
        self.lock = threading.Lock()  # held while sending; the give-up path waits for it
        self.count_lock = threading.Lock()
        self.cancelled = False
        self.producer: KafkaProducer | None = None
        self.waiting = len(records)

    def acked(self, _: Any) -> None:
        with self.count_lock:
            self.waiting -= 1
            done = self.waiting == 0
        if done:
            self.wakeups.resolve(self.future, None)

    def failed(self, exc: BaseException) -> None:
        with self.count_lock:
            first = self.waiting > 0
            self.waiting = 0
        if first:
            self.wakeups.resolve(self.future, exc)


def _resolve(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


class _Wakeups:
    """Resolve asyncio futures from Kafka's threads with one loop wake-up per burst of acks.

    One produce response acknowledges many requests' records at once; call_soon_threadsafe
    per request would write to the loop's wake-up pipe once each.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done: collections.deque[tuple[asyncio.Future[None], BaseException | None]] = (
            collections.deque()
        )
        self._scheduled = False

    def resolve(self, future: asyncio.Future[None], exc: BaseException | None) -> None:
        """From any thread: resolve the future on its loop soon."""
        self._done.append((future, exc))  # before the check, so a running drain sees it
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._scheduled = False  # before draining: a later append schedules a new drain
        done = self._done
        while done:
            _resolve(*done.popleft())


@functools.lru_cache(maxsize=16)
def _produce_metrics(topic: str) -> tuple[Any, Any]:
    # Exported (errors as 0) from the first produce on, as ProducerHandle.send_all does.
    return PRODUCE_ERRORS.labels(topic), PRODUCE_SECONDS.labels(topic)


class ProduceThread(BackgroundLoop):
    """Produce from async code: one thread sends, Kafka's acks resolve asyncio futures.

    kafka-python's send() may block (metadata, buffer space), so the event loop never calls
    it; it queues the request's records to this thread and awaits a future that the
    records' acknowledgements resolve (call_soon_threadsafe). No flush(): each request
    waits for its own records only, and the sender batches everything queued meanwhile
    (linger_ms), so concurrent requests share produce requests without waiting for each
    other's records. A request not acknowledged in time abandons the producer, as
    ProducerHandle.send_all does, so its records never land later.

    Once the thread has a producer that knows a topic's partitions, send() cannot block
    any more for that topic (kafka-python's accumulator only appends; it blocks on
    metadata alone), so the loop sends itself (`_send_inline`) while nothing handed to
    the thread is still unsent (records keep the order they were handed over in): one
    thread wake-up and GIL hand-off less per request, a tenth of a single-event
    webhook's CPU at a few hundred webhooks/s. Anything else (no producer yet, a topic
    without metadata, a producer given up) goes through the thread as before.
    """

    def __init__(self, handle: ProducerHandle) -> None:
        super().__init__("ingest-produce")
        self._handle = handle
        self._queue: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        # Jobs of one event-loop iteration are handed over together: one wake-up of the thread.
        self._batch: list[_Job] = []
        self._wakeups: dict[asyncio.AbstractEventLoop, _Wakeups] = {}
        # The producer the thread last sent with (None once given up), and how many jobs
        # the loop handed over and the thread finished: only the loop writes `_handed`,
        # only the thread `_finished_jobs`, so comparing them needs no lock.
        self._ready: KafkaProducer | None = None
        self._handed = 0
        self._finished_jobs = 0

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued sends and stop the thread (blocking)."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        super().stop(timeout)

    async def send_all(self, records: Sequence[OutgoingRecord], *, within: float) -> None:
        """Produce the records and return once Kafka acknowledged all; raise BrokerUnavailable."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        wakeups = self._wakeups.get(loop)
        if wakeups is None:
            wakeups = self._wakeups[loop] = _Wakeups(loop)
        job = _Job(records, wakeups, loop.create_future())
        topic = records[0].topic
        errors, seconds = _produce_metrics(topic)
        started = time.perf_counter()
        if not self._send_inline(job):
            if not self._batch:
                loop.call_soon(self._hand_over)
            self._batch.append(job)
        timer = loop.call_later(within, _resolve, job.future, TimeoutError())
        try:
            await job.future
        except (TimeoutError, KafkaError, BrokerUnavailable) as exc:
            errors.inc()
            await run_in_threadpool(self._give_up, job)
            if isinstance(exc, BrokerUnavailable):
                raise
            raise BrokerUnavailable(f"Kafka did not acknowledge in {within:g}s") from exc
        finally:
            timer.cancel()
        seconds.observe(time.perf_counter() - started)

    def _send_inline(self, job: _Job) -> bool:
        """Send on the loop when send() cannot block and the thread has nothing unsent."""
        producer = self._ready
        if producer is None or self._batch or self._handed != self._finished_jobs:
            return False
        # kafka-python offers no non-blocking "are the partitions known" but its metadata.
        metadata = getattr(producer, "_metadata", None)
        if metadata is None or any(
            metadata.partitions_for_topic(r.topic) is None for r in job.records
        ):
            return False
        with job.lock:
            self._send_records(job, producer)
        return True

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        self._handed += len(batch)
        self._queue.put(batch)

    def _give_up(self, job: _Job) -> None:
        self._ready = None
        job.cancelled = True
        # A send in progress (maybe still connecting) must not delay this 503: it sees
        # `cancelled` when it finishes and drops its producer itself.
        if not job.lock.acquire(blocking=False):
            return
        try:
            producer = job.producer
        finally:
            job.lock.release()
        if producer is not None:
            self._handle.abandon(producer)

    def step(self) -> None:
        """Send the next hand-over's jobs; a failure is handed to each job's waiting request."""
        batch = self._queue.get()
        if batch is None:
            self.finish()
            return
        for job in batch:
            self._send(job)
        self._finished_jobs += len(batch)

    def _send(self, job: _Job) -> None:
        with job.lock:
            if job.cancelled or job.future.done():
                return  # its request already answered 503: never send it later
            try:
                producer = self._handle.get()
            except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                self._ready = None
                job.failed(_produce_error(exc))
                return
            if self._send_records(job, producer):
                self._ready = producer
            if job.cancelled:
                self._ready = None
                self._handle.abandon(producer)

    def _send_records(self, job: _Job, producer: KafkaProducer) -> bool:
        """Send a job's records (its lock held); a failure is handed to its request."""
        job.producer = producer
        try:
            for r in job.records:
                future = producer.send(r.topic, value=r.value, key=r.key, headers=r.headers or None)
                future.add_callback(job.acked)
                future.add_errback(job.failed)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            self._ready = None
            job.failed(_produce_error(exc))
            return False
        return True


def _produce_error(exc: Exception) -> BaseException:
    if isinstance(exc, BrokerUnavailable | KafkaError):
        return exc
    return BrokerUnavailable(f"cannot produce: {type(exc).__name__}")
