"""Builders and waits shared by the campaigns tests."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlmodel import Session

from services.campaigns.directory import source_of
from services.common.contracts.events import Event, parse_event
from tests.conftest import produce_events
from tests.support import wait_until

__all__ = ["wait_until"]  # the campaigns tests import it from here


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    return value.isoformat()


def message(
    group: str,
    member: str,
    text: str,
    at: datetime,
    *,
    event_id: str | None = None,
    source: str = "campaigns-test",
    display_name: str | None = None,
) -> Event:
    return parse_event(
        {
            "id": event_id or uuid.uuid4().hex,
            "source": source,
            "type": "message.created",
            "group_id": group,
            "member_id": member,
            "occurred_at": at.isoformat(),
            "data": {"message_id": uuid.uuid4().hex, "text": text, "display_name": display_name},
        }
    )


def joined(
    group: str,
    member: str,
    at: datetime,
    *,
    source: str = "campaigns-test",
    display_name: str | None = None,
) -> Event:
    return parse_event(
        {
            "id": uuid.uuid4().hex,
            "source": source,
            "type": "member.joined",
            "group_id": group,
            "member_id": member,
            "occurred_at": at.isoformat(),
            "data": {"display_name": display_name},
        }
    )


TG_SOURCE, TG_SECRET = "tg", "s-tg"  # the delivery harness's Telegram source on the double


def post_updates(ingest: Any, *updates: dict[str, Any]) -> None:
    """Post Telegram updates to ingest's webhook of the harness's source; each must be accepted."""
    for u in updates:
        r = ingest.post(
            f"/v1/webhooks/{TG_SOURCE}",
            json=u,
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
        assert r.status_code == 202, r.text


def values(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def campaign_body(kind: str, *, start_in: float, end_in: float, **extra: Any) -> dict[str, Any]:
    t = now()
    body: dict[str, Any] = {
        "kind": kind,
        "title": f"{kind} test",
        "starts_at": iso(t + timedelta(seconds=start_in)),
        "ends_at": iso(t + timedelta(seconds=end_in)),
    }
    body.update(extra)
    return body


def read_group(
    bootstrap: str,
    topic: str,
    group: str,
    *,
    expect: int,
    timeout: float = 30.0,
    settle: float = 0.0,
) -> list[dict[str, Any]]:
    """Read a topic from the start and return the records of one group (other tests share the
    database, so a scheduler may publish their leftovers to this test's topic)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        found: list[dict[str, Any]] = []
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    value = orjson.loads(record.value)
                    if value.get("group_id") == group:
                        found.append(value)
            if len(found) >= expect:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return found
    finally:
        consumer.close()


def announced_lecture(
    client: Any,
    *,
    engine: Any,
    producer: Any,
    settings: Any,
    group: str,
    member: str,
    source: str,
    headers: dict[str, str],
) -> list[dict[str, Any]]:
    """Make `source` the group's latest source (one join), create an event campaign
    announced now, starting in 2 s and ending in 3 s, and return its three notifications
    once each has its `delivery` (whatever the outcome)."""
    first = joined(group, member, now() - timedelta(minutes=1), source=source)
    produce_events(producer, settings.topic_events, [first])

    def known_source() -> str | None:
        with Session(engine) as session:
            return source_of(session=session, group_id=group)

    # The announcement goes out at once: wait for the source to be known first.
    assert wait_until(lambda: known_source() == source)
    body = campaign_body(
        "event", start_in=2, end_in=3, announce_at=now().isoformat(), title="周五讲座"
    )
    r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=headers)
    assert r.status_code == 201, r.text
    base = f"/v1/groups/{group}/campaigns/{r.json()['id']}"

    def listed() -> list[dict[str, Any]]:
        return client.get(f"{base}/notifications", headers=headers).json()["notifications"]

    assert wait_until(
        lambda: len(listed()) == 3 and all(n["delivery"] for n in listed()), timeout=40
    )
    return listed()
