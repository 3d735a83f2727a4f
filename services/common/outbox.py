"""The transactional outbox: records written with the change that caused them, published after.

A service queues its outbound records (`enqueue`) in the same transaction as the change
that caused them, so a committed change always gets its records and a rolled-back one
never does. `publish_pending` sends what is unpublished in order and marks it: each
record is claimed by one publisher at a time (rows locked with SKIP LOCKED on
PostgreSQL, a conditional UPDATE with a lease on SQLite, which has no row locks), sent,
acknowledged by Kafka, then marked published. A crash between the acknowledgement and
the mark publishes the record once more with the same id, which consumers deduplicate.

Each service has its own outbox table (a subclass of `OutboxRecord` with `table=True`);
the entrypoint that committed calls `relay.wake()` so records leave at once, and the
relay's one-second loop picks up anything left behind by a crash or an outage.

The relay reads and marks with Core statements on the table (rows as plain result rows
with the columns it sends, no ORM objects; the mark a plain UPDATE, not an ORM bulk
update that evaluates its criteria against the session): a relay wakes once per commit
of its service, so its fixed cost per batch is paid per record when records trickle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import JSON, Field, Session, SQLModel, col, select

from services.common.db import UTCDateTime, utcnow
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


def enqueue(session: Session, table: type[OutboxRecord], records: Sequence[Outgoing]) -> None:
    """Queue records in the session's transaction (the caller commits with its change).

    One statement whatever the number of records. PostgreSQL: `INSERT … SELECT … FROM
    json_to_recordset(:rows)`, the rows one JSON text (each payload serialised once by
    pydantic, embedded as it is: `json`, not `jsonb`, keeps its text), so the statement is
    compiled and prepared once; an executemany was one INSERT per record, most of the CPU a
    batch spent queueing its records. SQLite: an executemany (in-process, no round trips).
    """
    if not records:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        rows = orjson.dumps(
            [
                {
                    "message_id": str(r.payload.id),  # type: ignore[attr-defined]
                    "topic": r.topic,
                    "key": r.key,
                    "payload": orjson.Fragment(r.payload.model_dump_json()),
                    "created_at": now,
                }
                for r in records
            ]
        )
        session.execute(_rows_insert(table), {"rows": rows.decode()})
        return
    session.execute(
        sa.insert(_table(table)),
        [
            {
                "message_id": str(r.payload.id),  # type: ignore[attr-defined]
                "topic": r.topic,
                "key": r.key,
                "payload": r.payload.model_dump(mode="json"),
                "created_at": now,
            }
            for r in records
        ],
    )


QUEUED = ("message_id", "topic", "key", "payload", "created_at")  # what enqueue writes
_INSERTS: dict[type[OutboxRecord], Any] = {}


def _rows_insert(table: type[OutboxRecord]) -> Any:
    """PostgreSQL: the table's INSERT of the `rows` JSON parameter, built once per table."""
    stmt = _INSERTS.get(table)
    if stmt is None:
        t = _table(table)
        incoming = (
            sa.func.json_to_recordset(sa.cast(sa.bindparam("rows", type_=sa.Text), sa.JSON))
            .table_valued(*(sa.column(name, t.c[name].type) for name in QUEUED))
            .render_derived(name="incoming", with_types=True)
        )
        stmt = sa.insert(t).from_select(list(QUEUED), sa.select(*incoming.c))
        _INSERTS[table] = stmt
    return stmt


SENT = ("seq", "message_id", "topic", "key", "payload")  # what the relay reads of a row


def _table(table: type[OutboxRecord]) -> sa.Table:
    return table.__table__  # type: ignore[attr-defined, no-any-return]


def _send(rows: Sequence[Any], producer: ProducerHandle) -> None:
    producer.send_all(
        [
            OutgoingRecord(
                r.topic,
                orjson.dumps(r.payload),
                r.key.encode(),
                [("message_id", r.message_id.encode())],
            )
            for r in rows
        ]
    )


def _mark_published(session: Session, table: type[OutboxRecord], rows: Sequence[Any]) -> None:
    t = _table(table)
    session.execute(
        sa.update(t)
        .where(t.c.seq.in_([r.seq for r in rows]))
        .values(published_at=utcnow(), claim_token=None)
    )


def _publish_locked(
    engine: Engine, table: type[OutboxRecord], producer: ProducerHandle
) -> list[Any]:
    t = _table(table)
    with Session(engine, expire_on_commit=False) as session:
        rows = list(
            session.execute(
                sa.select(*(t.c[name] for name in SENT))
                .where(t.c.published_at.is_(None))
                .order_by(t.c.seq)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
        )
        if rows:
            _send(rows, producer)
            _mark_published(session, table, rows)
            session.commit()
        return rows


def _publish_claimed(
    engine: Engine, table: type[OutboxRecord], producer: ProducerHandle
) -> list[Any]:
    token = uuid.uuid4().hex
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        pending = (
            select(table.seq)
            .where(
                col(table.published_at).is_(None),
                sa.or_(col(table.claimed_at).is_(None), col(table.claimed_at) < now - SQLITE_LEASE),
            )
            .order_by(col(table.seq))
            .limit(BATCH)
        )
        session.exec(
            sa.update(table)
            .where(col(table.seq).in_(pending.scalar_subquery()))
            .values(claim_token=token, claimed_at=now)
        )
        session.commit()
        t = _table(table)
        rows = list(
            session.execute(
                sa.select(*(t.c[name] for name in SENT))
                .where(t.c.claim_token == token)
                .order_by(t.c.seq)
            ).all()
        )
        if rows:
            _send(rows, producer)
            _mark_published(session, table, rows)
            session.commit()
        return rows


Published = Callable[[Sequence[Any]], None]
"""Called with the rows just published: each has `seq`, `message_id`, `topic`, `key`, `payload`."""


def publish_pending(
    *,
    engine: Engine,
    table: type[OutboxRecord],
    producer: ProducerHandle,
    on_published: Published | None = None,
) -> int:
    """Publish every unpublished record this process can claim, in order; return how many."""
    publish = _publish_locked if engine.dialect.name == "postgresql" else _publish_claimed
    total = 0
    while True:
        rows = publish(engine, table, producer)
        if rows and on_published is not None:
            on_published(rows)
        total += len(rows)
        if len(rows) < BATCH:
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
