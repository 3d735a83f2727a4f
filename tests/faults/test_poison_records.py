"""Poison records produced straight to community.events.v1 go to deadletter.v1 with headers,
every consumer goes on, and the dead-letter count is exported."""

import importlib
import time
from contextlib import ExitStack
from datetime import UTC, datetime

import orjson
from kafka import KafkaProducer

from services.common.contracts.events import parse_event
from tests.support import produce_events, read_topic

CONSUMERS = ["metrics", "moderation", "campaigns"]


def test_poison_records_are_dead_lettered_and_consumers_go_on(
    settings, run_app, kafka_bootstrap, unique
):
    group = unique("poison")
    poison = [
        b"\x00\x01 definitely not json",
        orjson.dumps({"id": "p2", "type": "message.created", "group_id": group}),
        orjson.dumps(
            {
                "id": "p3",
                "source": "test",
                "type": "message.created",
                "group_id": group,
                "member_id": "m1",
                "occurred_at": "2026-11-21T08:00:00+00:00",
                "data": {"message_id": "x", "text": "长" * 700_000},
            }
        ),
    ]
    good = parse_event(
        {
            "id": "good-1",
            "source": "test",
            "type": "message.created",
            "group_id": group,
            "member_id": "m1",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"message_id": "g1", "text": "大家好"},
        }
    )
    big_producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=8 * 1024 * 1024
    )
    try:
        for value in poison:
            big_producer.send(settings.topic_events, key=group.encode(), value=value).get(30)
        produce_events(big_producer, settings.topic_events, [good])
    finally:
        big_producer.close()

    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(
                run_app(importlib.import_module(f"services.{name}.app").create_app(settings))
            )
            for name in CONSUMERS
        }
        dead = read_topic(kafka_bootstrap, settings.topic_deadletter, expect=9, timeout=60)
        assert len(dead) == 9
        by_group: dict[str, list] = {}
        for record in dead:
            headers = {k: v.decode() for k, v in record.headers}
            assert headers["topic"] == settings.topic_events
            assert headers["partition"].isdigit() and headers["offset"].isdigit()
            assert headers["error"]
            by_group.setdefault(headers["consumer_group"], []).append(record.value)
        assert sorted(by_group) == sorted(settings.consumer_group_prefix + c for c in CONSUMERS)
        for values in by_group.values():
            assert sorted(values) == sorted(poison)

        deadline = time.monotonic() + 30
        for name, client in clients.items():
            group_id = settings.consumer_group_prefix + name
            dl_line = (
                f'qunyun_deadletter_records_total{{group="{group_id}",'
                f'topic="{settings.topic_events}"}} 3.0'
            )
            ok_line = (
                f'qunyun_consumer_records_total{{group="{group_id}",'
                f'outcome="processed",topic="{settings.topic_events}"}} 1.0'
            )
            while True:
                text = client.get("/metrics").text
                if (dl_line in text and ok_line in text) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert dl_line in text, f"{name}: dead letters not exported"
            assert ok_line in text, f"{name}: the good record after the poison was not processed"
