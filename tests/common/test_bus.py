"""The Kafka bus against the session's real broker."""

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from services.common.contracts.events import MemberJoined, parse_event
from services.common.kafka.admin import ensure_topics
from services.common.kafka.consumer import (
    FETCH_WAIT_FLOWING_MS,
    FETCH_WAIT_IDLE_MS,
    ConsumedEvent,
    ConsumerRunner,
)
from services.common.kafka.producer import ProducerHandle
from tests.support import produce_events, read_topic, wait_until


def joined(n: int, group: str = "g1") -> MemberJoined:
    event = parse_event(
        {
            "id": f"e{n}",
            "source": "test",
            "type": "member.joined",
            "group_id": group,
            "member_id": f"m{n}",
            "occurred_at": datetime(2026, 11, 21, tzinfo=UTC).isoformat(),
        }
    )
    assert isinstance(event, MemberJoined)
    return event


class Collector:
    """A handler that records what it saw and can fail on chosen member ids."""

    def __init__(self, fail_on: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.seen: list[ConsumedEvent] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, events: list[ConsumedEvent]) -> None:
        if any(e.event.member_id in self.fail_on for e in events):
            raise ValueError("cannot handle " + ",".join(sorted(self.fail_on)))
        with self.lock:
            self.seen.extend(events)

    def ids(self) -> set[str]:
        with self.lock:
            return {e.event.id for e in self.seen}


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions))
    finally:
        consumer.close()


OVERLAP = pytest.mark.parametrize("overlap", [False, True], ids=["serial", "overlap"])


@OVERLAP
def test_round_trip_typed_events_and_commits(settings, producer, kafka_bootstrap, overlap):
    handle = ProducerHandle(settings)
    events = [joined(i, group=f"g{i % 4}") for i in range(40)]
    produce_events(producer, settings.topic_events, events)
    collector = Collector()
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + "rt",
        handler=collector,
        producer=handle,
        overlap=overlap,
    )
    runner.start()
    try:
        assert wait_until(lambda: len(collector.ids()) == 40)
        assert all(isinstance(e.event, MemberJoined) for e in collector.seen)
        for group in ("g0", "g1", "g2", "g3"):  # each partition's records in offset order
            offsets = [e.record.offset for e in collector.seen if e.event.group_id == group]
            assert offsets == sorted(offsets)
        assert wait_until(
            lambda: (
                committed_total(kafka_bootstrap, runner.group_id, settings.topic_events, 3) == 40
            )
        )
    finally:
        runner.stop()
        handle.close()


@OVERLAP
def test_failing_record_goes_to_deadletter_and_loop_goes_on(
    settings, producer, kafka_bootstrap, overlap
):
    handle = ProducerHandle(settings)
    events = [joined(i, group="same-group") for i in range(5)]
    produce_events(producer, settings.topic_events, events)
    producer.send(settings.topic_events, key=b"same-group", value=b"{not json").get(timeout=10)
    produce_events(producer, settings.topic_events, [joined(99, group="same-group")])
    collector = Collector(fail_on={"m2"})
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + "dl",
        handler=collector,
        producer=handle,
        overlap=overlap,
    )
    runner.start()
    try:
        assert wait_until(lambda: collector.ids() == {"e0", "e1", "e3", "e4", "e99"})
        dead = read_topic(kafka_bootstrap, settings.topic_deadletter, expect=2)
        assert len(dead) == 2
        by_error = {dict(r.headers)["error"].decode()[:12]: r for r in dead}
        headers = {k: v.decode() for k, v in dead[0].headers}
        assert headers["topic"] == settings.topic_events
        assert headers["consumer_group"] == runner.group_id
        assert {"partition", "offset", "error"} <= headers.keys()
        assert any(k.startswith("InvalidEvent") for k in by_error)
        assert any(k.startswith("ValueError") for k in by_error)
        assert wait_until(
            lambda: committed_total(kafka_bootstrap, runner.group_id, settings.topic_events, 3) == 7
        )
    finally:
        runner.stop()
        handle.close()


@OVERLAP
def test_records_not_committed_come_back(settings, producer, overlap):
    """At-least-once: a consumer that dies before committing gets its records again."""
    handle = ProducerHandle(settings)
    produce_events(producer, settings.topic_events, [joined(i) for i in range(10)])
    group = settings.consumer_group_prefix + "alo"

    class Crash(BaseException):
        pass

    def crash(events: list[ConsumedEvent]) -> None:
        raise Crash  # not an Exception: the loop dies like a killed process, no commit

    first = ConsumerRunner(
        settings=settings, group_id=group, handler=crash, producer=handle, overlap=overlap
    )
    # Run in this thread so the crash surfaces here.
    with pytest.raises(Crash):
        first.run()

    collector = Collector()
    second = ConsumerRunner(settings=settings, group_id=group, handler=collector, producer=handle)
    second.start()
    try:
        assert wait_until(lambda: len(collector.ids()) == 10)
    finally:
        second.stop()
        handle.close()


def test_stop_is_prompt(settings):
    handle = ProducerHandle(settings)
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + "stop",
        handler=Collector(),
        producer=handle,
    )
    runner.start()
    time.sleep(1)
    started = time.monotonic()
    runner.stop()
    assert not runner.running
    assert time.monotonic() - started < 10


def step_until(runner: ConsumerRunner, done: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Run the loop's steps in this thread until `done()`; False when the time runs out."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        runner.step()
    return True


def test_adaptive_fetch_wait_reaches_the_fetch_requests(settings, producer):
    """The fetch wait the loop writes into kafka-python's fetcher config is the max wait of
    the fetch requests it then sends to the broker: short while records flow, doubling on
    each empty poll back to the default, short again when records return.

    kafka-python has no public setter, so the runner writes the fetcher's private config
    dict; the requests are read where kafka-python builds them, so this fails if it stops
    reading that dict (or renames what this reads) on an upgrade.
    """
    handle = ProducerHandle(settings)
    produce_events(producer, settings.topic_events, [joined(i) for i in range(5)])
    collector = Collector()
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + "wait",
        handler=collector,
        producer=handle,
        poll_timeout_ms=200,
    )
    sent: list[int] = []
    try:
        # Steps run in this thread, so the fetcher can be observed between polls.
        assert step_until(runner, lambda: len(collector.ids()) == 5, timeout=30)
        fetcher = runner._consumer._fetcher  # type: ignore[union-attr]
        assert fetcher.config["fetch_max_wait_ms"] == FETCH_WAIT_FLOWING_MS

        build = fetcher._create_fetch_requests

        def recording() -> dict[int, Any]:
            requests = build()
            sent.extend(request.max_wait_ms for request, _ in requests.values())
            return requests

        fetcher._create_fetch_requests = recording
        waits = []
        while runner._fetch_wait < FETCH_WAIT_IDLE_MS:
            runner.step()  # empty: nothing more was produced
            waits.append(fetcher.config["fetch_max_wait_ms"])
            assert len(waits) < 20
        assert waits == [10, 20, 40, 80, 160, 320, 500]
        # Wait for requests built after the last doubling (one per poll at the most).
        assert step_until(runner, lambda: bool(sent) and sent[-1] == FETCH_WAIT_IDLE_MS)
        assert {10, 20, 40, 80, 160, 320} & set(sent)
        assert sent == sorted(sent)  # requests follow the doubling, never behind it

        produce_events(producer, settings.topic_events, [joined(7)])
        assert step_until(runner, lambda: "e7" in collector.ids(), timeout=30)
        assert fetcher.config["fetch_max_wait_ms"] == FETCH_WAIT_FLOWING_MS
        # A fetch sent with the long wait may still be out (a busy machine can keep it out for
        # several empty polls, which double the wait again); while records keep coming, the
        # requests built after it ask briefly.
        more = iter(range(8, 1000))

        def flowing_and_brief() -> bool:
            produce_events(producer, settings.topic_events, [joined(next(more))])
            return sent[-1] == FETCH_WAIT_FLOWING_MS

        assert step_until(runner, flowing_and_brief)
    finally:
        runner.teardown()
        handle.close()


def test_held_back_commits_outlive_a_revoke_on_the_network_thread(settings, producer):
    """kafka-python 3 calls the revoke listener on its network thread, where a blocking
    commit raises RuntimeError. The listener must neither fail (that failed the poll) nor
    lose the offsets it held back: the partitions kept are committed by the next flush,
    though no record comes after. The listener is invoked here the way kafka-python does."""
    topic = f"bus.revoke.{uuid.uuid4().hex[:8]}"
    two = settings.model_copy(update={"topic_events": topic, "kafka_partitions": 2})
    ensure_topics(two, [topic])
    for partition in (0, 1):
        for n in range(3):
            value = joined(10 * partition + n).model_dump_json().encode()
            producer.send(topic, value=value, partition=partition)
    producer.flush()
    handle = ProducerHandle(two)
    errors: list[Any] = []
    runner = ConsumerRunner(
        settings=two,
        group_id=settings.consumer_group_prefix + "revoke-" + uuid.uuid4().hex[:6],
        handler=Collector(),
        producer=handle,
        on_error=errors.append,
        poll_timeout_ms=200,
        commit_interval_ms=600_000,
    )
    partitions = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    try:
        # Both partitions handled, their commits held back (a poll with records never flushes).
        assert step_until(runner, lambda: runner._uncommitted.keys() == partitions, timeout=30)
        consumer = runner._consumer
        assert consumer is not None
        listener = consumer._subscription.rebalance_listener

        async def revoke() -> None:
            listener.on_partitions_revoked(set(consumer.assignment()))

        consumer._net.run(revoke)
        assert runner._uncommitted.keys() == partitions  # kept for after the rebalance
        assert step_until(runner, lambda: all(consumer.committed(tp) == 3 for tp in partitions))
        assert errors == []
    finally:
        runner.teardown()
        handle.close()
