"""The kernel outbox relay and the shared producer against the session broker and database.

Each test has its own outbox table (the kernel's columns) and topic. The database is the
session's (PostgreSQL when there is one, SQLite otherwise); the SQLite relay (a lease
instead of row locks) is also run on a SQLite file of its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from sqlalchemy import Engine
from sqlmodel import Session

from services.common.contracts.notifications import CampaignNotification
from services.common.db import make_engine
from services.common.kafka.admin import ensure_topics
from services.common.kafka.producer import OutgoingRecord, ProducerHandle
from services.common.outbox import (
    BATCH,
    OutboxRecord,
    Outgoing,
    PublishedRecord,
    enqueue,
    publish_pending,
)
from services.common.settings import Settings
from tests.support import read_topic


class RelayTestOutbox(OutboxRecord, table=True):
    __tablename__ = "test_kernel_relay_outbox"


class Crash(BaseException):
    """The process dying between Kafka's acknowledgement and the mark: a BaseException, so
    nothing in the publisher gets to run on its way out (as when the process is killed)."""


class CrashAfterAck(ProducerHandle):
    """A producer whose process 'dies' right after Kafka acknowledged a batch."""

    def send_all(self, records: Any, *, timeout: float | None = None) -> None:
        super().send_all(records, timeout=timeout)
        raise Crash


class SlowFirstAck(ProducerHandle):
    """A producer whose first batch takes a second to be acknowledged (a slow broker)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sending = threading.Event()

    def send_all(self, records: Any, *, timeout: float | None = None) -> None:
        if not self.sending.is_set():
            self.sending.set()
            time.sleep(1.0)
        super().send_all(records, timeout=timeout)


class RefusedSend(ProducerHandle):
    """A producer whose broker refuses the batch (an exception, not a dead process)."""

    def send_all(self, records: Any, *, timeout: float | None = None) -> None:
        raise KafkaTimeoutError("broker unavailable")


def _notification(group: str, n: int) -> CampaignNotification:
    return CampaignNotification(
        id=f"{group}:c:reminder:{n}",
        group_id=group,
        source="tg-main",
        campaign_id="c",
        kind="reminder",
        text=f'抽奖还有 {n} 分钟结束 🎉 «quotes» "escaped" \\ back\nslash',
        mentions=["telegram:1", "telegram:2"],
        mention_names={"telegram:1": "小明", "telegram:2": "Ann"},
        data={"ratio": 0.1 + 0.2, "big": 2**53 + 1, "nested": {"list": [1, 2.5, None, True]}},
        created_at=datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC),
    )


@pytest.fixture
def topic(settings: Settings) -> str:
    name = f"relay.test.v1.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [name])
    return name


def _table_on(engine: Engine) -> Engine:
    RelayTestOutbox.__table__.drop(engine, checkfirst=True)  # type: ignore[attr-defined]
    RelayTestOutbox.__table__.create(engine)  # type: ignore[attr-defined]
    return engine


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = _table_on(make_engine(database_url))
    yield engine
    RelayTestOutbox.__table__.drop(engine, checkfirst=True)  # type: ignore[attr-defined]
    engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    engine = _table_on(make_engine(f"sqlite:///{tmp_path / 'relay.db'}"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["session", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The session's database, then a SQLite file of its own (the lease path)."""
    engine: Engine = request.getfixturevalue("db" if request.param == "session" else "sqlite_db")
    return engine


@pytest.fixture
def producer(settings: Settings) -> Iterator[ProducerHandle]:
    handle = ProducerHandle(settings)
    yield handle
    handle.close()


def _queue(engine: Engine, topic: str, notes: list[CampaignNotification]) -> None:
    with Session(engine) as session:
        enqueue(session, RelayTestOutbox, [Outgoing(topic, n.group_id, n) for n in notes])
        session.commit()


def _publish_failing(
    engine: Engine, failing: ProducerHandle, expected: type[BaseException]
) -> None:
    """One publish through a producer that fails with `expected`, closed after."""
    try:
        with pytest.raises(expected):
            publish_pending(engine=engine, table=RelayTestOutbox, producer=failing)
    finally:
        failing.close()


def _while_one_publishes_slowly(
    engine: Engine, settings: Settings, meanwhile: Callable[[], int]
) -> tuple[int, int]:
    """Run a publisher whose first batch is acknowledged after a second and, while it waits,
    `meanwhile`; return what each published."""
    slow = SlowFirstAck(settings)
    published: list[int] = []
    try:
        relay = threading.Thread(
            target=lambda: published.append(
                publish_pending(engine=engine, table=RelayTestOutbox, producer=slow)
            )
        )
        relay.start()
        assert slow.sending.wait(10)
        theirs = meanwhile()
        relay.join(30)
    finally:
        slow.close()
    return published[0], theirs


def _publish(engine: Engine, producer: ProducerHandle) -> int:
    return publish_pending(engine=engine, table=RelayTestOutbox, producer=producer)


def _ids_on(bootstrap: str, topic: str, *, expect: int) -> list[str]:
    """The ids of the records on the topic, in the order they are there."""
    records = read_topic(bootstrap, topic, expect=expect, settle=0.5)
    return [orjson.loads(r.value)["id"] for r in records]


def _pending(engine: Engine) -> int:
    t = RelayTestOutbox.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(t.c.published_at.is_(None))
        return int(conn.execute(query).scalar_one())


def test_relay_sends_each_payload_as_the_json_consumers_decode(
    engine: Engine,
    topic: str,
    producer: ProducerHandle,
    kafka_bootstrap: str,
) -> None:
    notes = [_notification(f"g{i % 3}", i) for i in range(7)]
    _queue(engine, topic, notes)
    published: list[PublishedRecord] = []

    assert publish_pending(
        engine=engine, table=RelayTestOutbox, producer=producer, on_published=published.extend
    ) == len(notes)

    assert _pending(engine) == 0
    by_id = {n.id: n for n in notes}
    records = read_topic(kafka_bootstrap, topic, expect=len(notes), settle=0.5)
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(by_id)
    for r in records:
        note = by_id[orjson.loads(r.value)["id"]]
        # What every consumer does with a value: the contract model back, field for field.
        assert CampaignNotification.model_validate_json(r.value) == note
        assert orjson.loads(r.value) == note.model_dump(mode="json")
        if engine.dialect.name == "postgresql":
            # enqueue stores the model's own JSON text, which the relay sends byte for byte.
            assert r.value == note.model_dump_json().encode()
        assert r.key == note.group_id.encode()
        assert r.headers == [("message_id", note.id.encode())]
    # In order per key (one group, one partition).
    for group in ("g0", "g1", "g2"):
        sent = [orjson.loads(r.value)["id"] for r in records if r.key == group.encode()]
        sent_order = sorted(sent, key=lambda i: int(i.rsplit(":", 1)[1]))
        assert sent == sent_order
    assert [p.message_id for p in published] == [n.id for n in notes]
    assert [p.payload for p in published] == [n.model_dump(mode="json") for n in notes]
    assert [p.seq for p in published] == sorted(p.seq for p in published)
    assert _publish(engine, producer) == 0


def test_a_crash_between_the_ack_and_the_mark_publishes_again_with_the_same_id(
    engine: Engine,
    settings: Settings,
    topic: str,
    producer: ProducerHandle,
    kafka_bootstrap: str,
) -> None:
    notes = [_notification("g", i) for i in range(3)]
    _queue(engine, topic, notes)
    _publish_failing(engine, CrashAfterAck(settings), Crash)
    assert _pending(engine) == len(notes)  # acknowledged, never marked
    if engine.dialect.name == "sqlite":
        # The crashed publisher's lease must run out before another may claim its rows.
        assert _publish(engine, producer) == 0
        t = RelayTestOutbox.__table__  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(sa.update(t).values(claimed_at=datetime(2000, 1, 1, tzinfo=UTC)))

    assert _publish(engine, producer) == len(notes)

    assert _pending(engine) == 0
    records = read_topic(kafka_bootstrap, topic, expect=2 * len(notes), settle=0.5)
    sent = [(r.headers, orjson.loads(r.value)["id"]) for r in records]
    # Each record twice (the crash's and the retry's), same id and header, in order each time.
    assert sent == [([("message_id", n.id.encode())], n.id) for n in notes] * 2


def test_a_second_publisher_never_overtakes_the_first(
    engine: Engine,
    settings: Settings,
    topic: str,
    producer: ProducerHandle,
    kafka_bootstrap: str,
) -> None:
    """Two replicas' relays on one table, the first slowed in its first batch: the second
    waits for it (PostgreSQL) or leaves the table to it (SQLite), and one key's records
    reach Kafka in the order they were queued, each once."""
    notes = [_notification("g", i) for i in range(2 * BATCH + 5)]
    _queue(engine, topic, notes)
    first, second = _while_one_publishes_slowly(
        engine,
        settings,
        lambda: _publish(engine, producer),
    )
    assert first + second == len(notes) and first >= BATCH
    if engine.dialect.name == "sqlite":
        assert second == 0  # the first publisher's lease was live
    assert _pending(engine) == 0
    assert _ids_on(kafka_bootstrap, topic, expect=len(notes)) == [n.id for n in notes]


def test_records_queued_while_another_publishes_leave_with_that_round(
    engine: Engine,
    settings: Settings,
    topic: str,
    producer: ProducerHandle,
    kafka_bootstrap: str,
) -> None:
    """A service commits records and publishes them while its relay is sending: its publish
    waits (PostgreSQL) or leaves them to the relay (SQLite), and none is left behind for
    the relay's next round."""
    first = [_notification("g", i) for i in range(3)]
    later = [_notification("g", i) for i in range(3, 6)]
    _queue(engine, topic, first)

    def commit_and_publish() -> int:
        _queue(engine, topic, later)
        return _publish(engine, producer)

    relayed, mine = _while_one_publishes_slowly(engine, settings, commit_and_publish)
    assert relayed + mine == 6 and _pending(engine) == 0
    assert _ids_on(kafka_bootstrap, topic, expect=6) == [n.id for n in first + later]


def test_a_refused_send_leaves_the_rows_to_the_next_publisher_at_once(
    engine: Engine,
    settings: Settings,
    topic: str,
    producer: ProducerHandle,
    kafka_bootstrap: str,
) -> None:
    """Kafka refusing a batch is not a crash: no lease (SQLite) or lock (PostgreSQL) is
    left behind, and the next try publishes everything."""
    notes = [_notification("g", i) for i in range(3)]
    _queue(engine, topic, notes)
    _publish_failing(engine, RefusedSend(settings), KafkaTimeoutError)
    assert _pending(engine) == len(notes)
    assert _publish(engine, producer) == len(notes)
    assert _ids_on(kafka_bootstrap, topic, expect=len(notes)) == [n.id for n in notes]


def test_send_all_puts_each_key_where_kafka_pythons_partitioner_does(
    settings: Settings, topic: str, producer: ProducerHandle, kafka_bootstrap: str
) -> None:
    keys = [f"telegram:-100{i:07d}".encode() for i in range(40)] + [b"", "群".encode()]
    plain = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    try:
        for key in keys:
            plain.send(topic, value=b"plain", key=key)
        plain.flush(10)
    finally:
        plain.close()
    producer.send_all([OutgoingRecord(topic, b"ours", key) for key in keys])
    producer.send_all([OutgoingRecord(topic, b"unkeyed")])

    records = read_topic(kafka_bootstrap, topic, expect=2 * len(keys) + 1, settle=0.5)
    where = {(r.value, r.key): r.partition for r in records}
    assert len(records) == 2 * len(keys) + 1
    assert len({where[(b"plain", k)] for k in keys}) > 1  # the keys do spread
    assert all(where[(b"ours", k)] == where[(b"plain", k)] for k in keys)
    assert (b"unkeyed", None) in where
    # kafka-python's own sensors are off (nobody reads them; they cost the sender thread).
    assert producer.get().metrics() is None


def test_published_record_payload_is_parsed_from_the_bytes_sent() -> None:
    value = b'{"id":"a","action":"kick","n":1.5}'
    row = PublishedRecord(1, "a", "t", "k", value)
    assert row.payload == {"id": "a", "action": "kick", "n": 1.5}
    assert row.value is value
