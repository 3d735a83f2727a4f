"""Helpers shared across test folders; fixtures stay in the conftest files.

Import from here (`from tests.support import wait_until, auth`), not from a conftest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from services.common.contracts.events import Event, encode_event

T = TypeVar("T")

# Test config: the group the `limited` token may touch, and the webhook sources with their
# (platform, secret, encrypt_key).
LIMITED_GROUP = "test:limited-group"
SOURCE_SECRETS: dict[str, tuple[str, str, str | None]] = {
    "generic-test": ("generic", "generic-secret-0123456789", None),
    "slack-test": ("slack", "8f742231b10e8888abcd99yyyzzz85a5", None),
    "telegram-test": ("telegram", "telegram-secret-token-42", None),
    "feishu-test": ("feishu", "feishu-verification-token", None),
    "feishu-enc": ("feishu", "feishu-verification-token-2", "feishu-encrypt-key-xyz"),
    "onebot-test": ("onebot", "onebot-post-secret-7f3a", None),
}


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """Poll `predicate` until it returns something truthy and return that value.

    On timeout return the predicate's last (falsy) value, checked once more at the deadline,
    so `assert wait_until(...)` fails and `wait_until(...) or default` works.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def auth(token: str) -> dict[str, str]:
    """Return the Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def produce_events(producer: KafkaProducer, topic: str, events: list[Event]) -> None:
    """Put events on a topic keyed by group id, as ingest does, and wait for the acks."""
    futures = [producer.send(topic, key=e.group_id.encode(), value=encode_event(e)) for e in events]
    producer.flush(timeout=30)
    for f in futures:
        f.get(timeout=30)


def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 20.0, settle: float = 0.0
) -> list[Any]:
    """Read a topic from the beginning (no consumer group) until `expect` records or timeout.

    With `settle` > 0 keep reading that many seconds after reaching `expect`, to catch extras.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        records: list[Any] = []
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if len(records) >= expect:
                if settle <= 0:
                    break
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return records
    finally:
        consumer.close()
