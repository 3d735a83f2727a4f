"""The Kafka bus against the session's real broker."""

import threading
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from services.common.contracts.events import MemberJoined, parse_event
from services.common.kafka.consumer import ConsumedEvent, ConsumerRunner
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


def test_round_trip_typed_events_and_commits(settings, producer, kafka_bootstrap):
    handle = ProducerHandle(settings)
    events = [joined(i, group=f"g{i % 4}") for i in range(40)]
    produce_events(producer, settings.topic_events, events)
    collector = Collector()
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + "rt",
        handler=collector,
        producer=handle,
    )
    runner.start()
    try:
        assert wait_until(lambda: len(collector.ids()) == 40)
        assert all(isinstance(e.event, MemberJoined) for e in collector.seen)
        assert wait_until(
            lambda: (
                committed_total(kafka_bootstrap, runner.group_id, settings.topic_events, 3) == 40
            )
        )
    finally:
        runner.stop()
        handle.close()


def test_failing_record_goes_to_deadletter_and_loop_goes_on(settings, producer, kafka_bootstrap):
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


def test_records_not_committed_come_back(settings, producer):
    """At-least-once: a consumer that dies before committing gets its records again."""
    handle = ProducerHandle(settings)
    produce_events(producer, settings.topic_events, [joined(i) for i in range(10)])
    group = settings.consumer_group_prefix + "alo"

    class Crash(BaseException):
        pass

    def crash(events: list[ConsumedEvent]) -> None:
        raise Crash  # not an Exception: the loop dies like a killed process, no commit

    first = ConsumerRunner(settings=settings, group_id=group, handler=crash, producer=handle)
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
