"""The transactional outbox: records written with the change that caused them, published after.

A service queues its outbound records (`enqueue`) in the same transaction as the change
that caused them, so a committed change always gets its records and a rolled-back one
never does. `publish_pending` sends what is unpublished in order and marks it. One
publisher at a time works on a table, however many replicas of the service run: each
batch is claimed, sent and acknowledged before the next is claimed, so records of a key
reach Kafka in the order they were queued (PostgreSQL: a transaction-scoped advisory lock
per table, then the rows locked; SQLite, which has no row locks: a lease taken by a
conditional UPDATE only while no other publisher's lease is live). Each batch is sent,
acknowledged by Kafka, then marked published (on PostgreSQL the mark is written by the
statement that locks the rows, in their transaction, which commits only after the
acknowledgement: nobody sees it before, and a failed send rolls it back). A crash between
the acknowledgement and the mark publishes the record once more with the same id, which
consumers deduplicate.

Each service has its own outbox table (a subclass of `OutboxRecord` with `table=True`);
the entrypoint that committed calls `relay.wake()` so records leave at once, and the
relay's one-second loop picks up anything left behind by a crash or an outage.

The relay is batch-first: a relay wakes once per commit of its service, so its fixed cost
per batch is paid per record when records trickle, and its cost per record by the
thousand when they flood. A batch is the lock and one statement on a Core connection on
PostgreSQL (no Session, no ORM objects); payloads are read as the JSON text they were
stored as and sent as they are (never parsed into dicts and serialised again);
`ProducerHandle.send_all` hands the batch to kafka-python.
"""

from __future__ import annotations

import functools
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import JSON, Field, SQLModel

from services.common.db import Db, UTCDateTime, dialect_of, insert_rows, rows_params, utcnow
from services.common.kafka.producer import OutgoingRecord, ProducerHandle
from services.common.worker import BackgroundLoop

log = logging.getLogger(__name__)

BATCH = 500
SQLITE_LEASE = timedelta(seconds=60)


class OutboxRecord(SQLModel):
    """The columns of every outbox table; a service subclasses it with `table=True`."""

    seq: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=64, index=True)
    topic: str = Field(max_length=255)
    key: str = Field(max_length=512)
    payload: dict[str, Any] = Field(sa_type=JSON, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    claim_token: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Outgoing:
    """One record to queue: a contract model (with an `id`) for a topic, keyed by group."""

    topic: str
    key: str
    payload: BaseModel


def enqueue(session: Db, table: type[OutboxRecord], records: Sequence[Outgoing]) -> None:
    """Queue records in the transaction of `session` (a Session or a Connection; the caller
    commits with its change).

    One statement whatever the number of records (`services.common.db.insert_rows`).
    PostgreSQL: `INSERT … SELECT … FROM json_to_recordset(:rows)`, the rows one JSON text
    (each payload serialised once by pydantic, embedded as it is: `json`, not `jsonb`,
    keeps its text), so the statement is compiled and prepared once; an executemany was
    one INSERT per record, most of the CPU a batch spent queueing its records. SQLite: an
    executemany (in-process, no round trips).
    """
    if not records:
        return
    now = utcnow()
    postgres = dialect_of(session) == "postgresql"
    rows = [
        {
            "message_id": str(r.payload.id),  # type: ignore[attr-defined]
            "topic": r.topic,
            "key": r.key,
            "payload": (
                orjson.Fragment(r.payload.model_dump_json())
                if postgres
                else r.payload.model_dump(mode="json")
            ),
            "created_at": now,
        }
        for r in records
    ]
    session.execute(_rows_insert(table, postgres), rows_params(session, rows))


QUEUED = ("message_id", "topic", "key", "payload", "created_at")  # what enqueue writes


@functools.cache
def _rows_insert(table: type[OutboxRecord], postgres: bool) -> Any:
    """The table's insert of queued records (payloads kept as their JSON text), built once."""
    return insert_rows(table, QUEUED, postgres=postgres, keep_json_text=True)


def _table(table: type[OutboxRecord]) -> sa.Table:
    return table.__table__  # type: ignore[attr-defined, no-any-return]


class PublishedRecord(NamedTuple):
    """A record the relay published, as `on_published` gets it."""

    seq: int
    message_id: str
    topic: str
    key: str
    value: bytes  # the payload's JSON text as stored, the record's value as sent

    @property
    def payload(self) -> dict[str, Any]:
        """The payload as a dict (parsed on each access: a relay never needs it)."""
        return orjson.loads(self.value)  # type: ignore[no-any-return]


Published = Callable[[Sequence[Any]], None]
"""Called with the records just published (`PublishedRecord`s: `seq`, `message_id`,
`topic`, `key`, `value`, and `payload` parsed on access)."""


@functools.cache
def _claim_and_mark(table: type[OutboxRecord]) -> Any:
    """PostgreSQL: lock the next pending rows (SKIP LOCKED), mark them published and return
    them in order, payloads as their stored JSON text, in one statement built once per table.

    The mark is part of the transaction that holds the locks, which commits only after Kafka
    acknowledged the records: until then nobody sees it, and a failed send or a crash rolls
    it back with the locks.
    """
    t = _table(table)
    picked = (
        sa.select(t.c.seq)
        .where(t.c.published_at.is_(None))
        .order_by(t.c.seq)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")  # evaluated once: the rows it locked are the rows marked
    )
    claimed = (
        sa.update(t)
        .where(t.c.seq == picked.c.seq)
        .values(published_at=sa.bindparam("now", type_=t.c.published_at.type))
        .returning(*_sent_columns(t))
        .cte("claimed")
    )
    return sa.select(claimed).order_by(claimed.c.seq)


def _sent_columns(t: sa.Table) -> tuple[Any, ...]:
    # The payload as the text it was stored as: sent as it is, never parsed and re-encoded.
    payload = sa.cast(t.c.payload, sa.Text).label("payload")
    return (t.c.seq, t.c.message_id, t.c.topic, t.c.key, payload)


@functools.cache
def _lease_statements(table: type[OutboxRecord]) -> tuple[Any, Any, Any, Any]:
    """SQLite: the claim (a lease on the next pending rows, unless another publisher's lease
    is live), the read of the claimed rows, their mark, and the lease's release, built once
    per table."""
    t = _table(table)
    stamp = t.c.claimed_at.type
    token = sa.bindparam("token", type_=t.c.claim_token.type)
    now = sa.bindparam("now", type_=stamp)
    expired = sa.bindparam("expired", type_=stamp)
    pending = (
        sa.select(t.c.seq)
        .where(
            t.c.published_at.is_(None),
            sa.or_(t.c.claimed_at.is_(None), t.c.claimed_at < expired),
        )
        .order_by(t.c.seq)
        .limit(BATCH)
    )
    leased = sa.select(t.c.seq).where(t.c.published_at.is_(None), t.c.claimed_at >= expired)
    claim = (
        sa.update(t)
        .where(t.c.seq.in_(pending.scalar_subquery()), ~leased.exists())
        .values(claim_token=token, claimed_at=now)
    )
    read = sa.select(*_sent_columns(t)).where(t.c.claim_token == token).order_by(t.c.seq)
    # The range keeps it on the primary key; the token, to the rows still ours.
    in_range = t.c.seq.between(sa.bindparam("lo"), sa.bindparam("hi"))
    mark = (
        sa.update(t)
        .where(in_range, t.c.claim_token == token)
        .values(published_at=now, claim_token=None)
    )
    release = (
        sa.update(t)
        .where(t.c.claim_token == token, t.c.published_at.is_(None))
        .values(claim_token=None, claimed_at=None)
    )
    return claim, read, mark, release


def _send(rows: Sequence[Any], producer: ProducerHandle) -> list[OutgoingRecord]:
    records = [
        OutgoingRecord(topic, payload.encode(), key.encode(), [("message_id", message_id.encode())])
        for _, message_id, topic, key, payload in rows
    ]
    producer.send_all(records)
    return records


# Taken before each PostgreSQL batch and held until its commit (after Kafka's acknowledgement).
ONE_PUBLISHER = sa.text("SELECT pg_advisory_xact_lock(:key)")


@functools.cache
def _publisher_key(table: type[OutboxRecord]) -> int:
    return zlib.crc32(f"outbox:{table.__tablename__}".encode())


def _publish_locked(
    engine: Engine, table: type[OutboxRecord], producer: ProducerHandle
) -> tuple[Sequence[Any], list[OutgoingRecord]]:
    with engine.connect() as conn:
        conn.execute(ONE_PUBLISHER, {"key": _publisher_key(table)})
        rows = conn.execute(_claim_and_mark(table), {"now": utcnow()}).all()
        if not rows:
            return rows, []
        records = _send(rows, producer)
        conn.commit()
    return rows, records


def _publish_claimed(
    engine: Engine, table: type[OutboxRecord], producer: ProducerHandle
) -> tuple[Sequence[Any], list[OutgoingRecord]]:
    claim, read, mark, release = _lease_statements(table)
    token = uuid.uuid4().hex
    now = utcnow()
    with engine.connect() as conn:
        conn.execute(claim, {"token": token, "now": now, "expired": now - SQLITE_LEASE})
        conn.commit()
        rows = conn.execute(read, {"token": token}).all()
        if not rows:
            return rows, []
        try:
            records = _send(rows, producer)
        except Exception:
            # Kafka refused or timed out: give the rows back at once rather than after the
            # lease (a process that dies leaves the lease, and the rows wait it out).
            conn.rollback()
            conn.execute(release, {"token": token})
            conn.commit()
            raise
        conn.execute(mark, {"token": token, "now": utcnow(), "lo": rows[0].seq, "hi": rows[-1].seq})
        conn.commit()
    return rows, records


def publish_pending(
    *,
    engine: Engine,
    table: type[OutboxRecord],
    producer: ProducerHandle,
    on_published: Published | None = None,
) -> int:
    """Publish every unpublished record this process can claim, in order; return how many.

    A batch of up to BATCH records costs two statements on PostgreSQL (the publishers' lock;
    claim, read and mark together, committed after Kafka's acknowledgement), three on SQLite
    (claim, read, mark). Another publisher of the table waits for the batch's commit on
    PostgreSQL, then takes what is left. On SQLite it finds the live lease, claims nothing
    and returns 0; the lease's holder goes on until a claim finds nothing, so records
    committed while it was sending leave with it rather than at the relay's next round.
    Each payload goes out as the JSON text it was stored as, read as text, never parsed into
    a dict and serialised again: on PostgreSQL the contract model's own JSON byte for byte
    (`enqueue` embeds it in a `json` column, which keeps text as it is), on SQLite the same
    document as SQLAlchemy's JSON type wrote it.
    """
    postgres = engine.dialect.name == "postgresql"
    publish = _publish_locked if postgres else _publish_claimed
    # A batch this full may have records behind it. On SQLite, any batch: a publisher that
    # found this one's lease live has returned, and what it committed is left to this one.
    more_behind = BATCH if postgres else 1
    total = 0
    while True:
        rows, records = publish(engine, table, producer)
        if rows and on_published is not None:
            on_published(
                [
                    PublishedRecord(row[0], row[1], row[2], row[3], record.value)
                    for row, record in zip(rows, records, strict=True)
                ]
            )
        total += len(rows)
        if len(rows) < more_behind:
            return total


class OutboxRelay(BackgroundLoop):
    """Publish a table's pending records: at once when woken, else every `interval` seconds."""

    def __init__(
        self,
        *,
        engine: Engine,
        table: type[OutboxRecord],
        producer: ProducerHandle,
        on_published: Published | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(f"outbox:{table.__tablename__}", interval=interval)
        self._engine = engine
        self._table = table
        self._producer = producer
        self._on_published = on_published

    def step(self) -> None:
        publish_pending(
            engine=self._engine,
            table=self._table,
            producer=self._producer,
            on_published=self._on_published,
        )
