"""The transactional outbox: records written with the change that caused them, published after.

Each record is claimed by one publisher at a time (a row lock skipped by the others
on PostgreSQL; a conditional UPDATE with a lease on SQLite), sent, acknowledged by
Kafka and then marked published. A crash between the acknowledgement and the mark
republishes the record once more with the same `id`, which consumers deduplicate.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.campaigns import telemetry
from services.campaigns.models import Outbox, utcnow
from services.common.kafka.producer import OutgoingRecord, ProducerHandle
from services.common.settings import Settings

BATCH = 500
SQLITE_LEASE = timedelta(seconds=60)


def add_records(
    *,
    session: Session,
    stream: str,
    records: list[tuple[str, str, dict[str, Any]]],
    now: datetime,
) -> None:
    """Queue (message id, key, payload) records for a stream ("notifications" or "rewards")."""
    if records:
        session.exec(
            sa.insert(Outbox.__table__),  # type: ignore[attr-defined]
            params=[
                {
                    "message_id": message_id,
                    "stream": stream,
                    "key": key,
                    "payload": payload,
                    "created_at": now,
                }
                for message_id, key, payload in records
            ],
        )


def add_record(
    *,
    session: Session,
    stream: str,
    message_id: str,
    key: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue one record for a stream in the current transaction."""
    add_records(session=session, stream=stream, records=[(message_id, key, payload)], now=now)


def _topic(settings: Settings, stream: str) -> str:
    if stream == "notifications":
        return settings.topic_campaign_notifications
    return settings.topic_campaign_rewards


def _send(rows: list[Outbox], *, producer: ProducerHandle, settings: Settings) -> None:
    producer.send_all(
        [
            OutgoingRecord(
                _topic(settings, r.stream),
                orjson.dumps(r.payload),
                r.key.encode(),
                [("message_id", r.message_id.encode())],
            )
            for r in rows
        ]
    )


def _mark_published(session: Session, rows: list[Outbox]) -> None:
    session.exec(
        sa.update(Outbox)
        .where(col(Outbox.seq).in_([r.seq for r in rows]))
        .values(published_at=utcnow(), claim_token=None)
    )


def _publish_locked(
    *, engine: Engine, producer: ProducerHandle, settings: Settings
) -> list[Outbox]:
    with Session(engine, expire_on_commit=False) as session:
        rows = list(
            session.exec(
                select(Outbox)
                .where(col(Outbox.published_at).is_(None))
                .order_by(col(Outbox.seq))
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
        )
        if rows:
            _send(rows, producer=producer, settings=settings)
            _mark_published(session, rows)
            session.commit()
        return rows


def _publish_claimed(
    *, engine: Engine, producer: ProducerHandle, settings: Settings
) -> list[Outbox]:
    token = uuid.uuid4().hex
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        pending = (
            select(Outbox.seq)
            .where(
                col(Outbox.published_at).is_(None),
                sa.or_(
                    col(Outbox.claimed_at).is_(None), col(Outbox.claimed_at) < now - SQLITE_LEASE
                ),
            )
            .order_by(col(Outbox.seq))
            .limit(BATCH)
        )
        session.exec(
            sa.update(Outbox)
            .where(col(Outbox.seq).in_(pending.scalar_subquery()))
            .values(claim_token=token, claimed_at=now)
        )
        session.commit()
        rows = list(
            session.exec(
                select(Outbox).where(col(Outbox.claim_token) == token).order_by(col(Outbox.seq))
            ).all()
        )
        if rows:
            _send(rows, producer=producer, settings=settings)
            _mark_published(session, rows)
            session.commit()
        return rows


def publish_pending(*, engine: Engine, producer: ProducerHandle, settings: Settings) -> int:
    """Publish every unpublished outbox record this process can claim; return how many."""
    publish = _publish_locked if engine.dialect.name == "postgresql" else _publish_claimed
    total = 0
    while True:
        rows = publish(engine=engine, producer=producer, settings=settings)
        for r in rows:
            if r.stream == "notifications":
                telemetry.NOTIFICATIONS.labels(r.payload.get("kind", "unknown")).inc()
        total += len(rows)
        if len(rows) < BATCH:
            return total
