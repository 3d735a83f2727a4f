"""Delivery's consumer commits handled offsets at most every COMMIT_INTERVAL_MS (the kernel
runner's `commit_interval_ms`): never an offset whose handler has not returned, what it
holds back committed when the topic goes quiet and on a clean stop."""

from __future__ import annotations

import threading

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from services.common.kafka.consumer import ConsumerRunner, Record
from services.common.kafka.producer import ProducerHandle
from services.delivery.app import COMMIT_INTERVAL_MS
from tests.support import wait_until


def _committed(bootstrap: str, group: str, topic: str, partitions: int = 3) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions))
    finally:
        consumer.close()


def _step_until(runner: ConsumerRunner, done, limit: int = 400) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        if done():
            return True
        runner.step()
    return done()


def test_offsets_are_held_back_only_after_their_handler_returned(
    settings, producer, kafka_bootstrap
):
    assert COMMIT_INTERVAL_MS > 0
    handled: list[Record] = []
    lock = threading.Lock()

    def handler(records: list[Record]) -> None:
        with lock:
            handled.extend(records)

    def count() -> int:
        with lock:
            return len(handled)

    topic, group = settings.topic_events, settings.consumer_group_prefix + "commits"
    handle = ProducerHandle(settings)
    runner = ConsumerRunner(
        settings=settings,
        group_id=group,
        record_handler=handler,
        topics=[topic],
        producer=handle,
        poll_timeout_ms=200,
        commit_interval_ms=600_000,  # nothing is committed by time in this test
    )
    try:
        for i in range(3):
            producer.send(topic, key=f"g{i}".encode(), value=b"{}")
        producer.flush()
        assert _step_until(runner, lambda: count() == 3)
        # The topic goes quiet: an empty poll commits what was handled.
        assert _step_until(runner, lambda: _committed(kafka_bootstrap, group, topic) == 3, 50)

        for i in range(3, 6):
            producer.send(topic, key=f"g{i}".encode(), value=b"{}")
        producer.flush()
        assert _step_until(runner, lambda: count() == 6)
        # Handled and held back: the step that handled the last record committed nothing.
        assert _committed(kafka_bootstrap, group, topic) < 6
    finally:
        runner.teardown()  # a clean stop commits what it held back
        handle.close()
    assert wait_until(lambda: _committed(kafka_bootstrap, group, topic) == 6)
