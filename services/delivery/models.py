"""Delivery's tables: one row per record to carry out (the durable queue), and the outbox.

`deliveries` is unique on `ref_id` (the record's id), so a replayed or redelivered record
inserts nothing. `seq` orders a group's rows as Kafka delivered them; only the oldest
unfinished row of a group may be carried out (order within a group). `state` moves
pending → in_flight (claimed, an attempt counted, `lease_until` set) → pending (retry,
next step) or done (`outcome` set, receipt queued in the same transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from services.common.db import utc_column
from services.common.outbox import OutboxRecord

PENDING = "pending"
IN_FLIGHT = "in_flight"
DONE = "done"
UNFINISHED = (PENDING, IN_FLIGHT)
HEADS_PREDICATE = "state IN ('pending', 'in_flight')"


class Delivery(SQLModel, table=True):
    """One record of moderation.actions.v1 or campaigns.notifications.v1 (or a REST post)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_queue", "state", "group_id", "seq"),
        sa.Index("ix_deliveries_group_id_id", "group_id", "id"),
        # Each group's queue, unfinished rows only: its head is one probe (store.py).
        sa.Index(
            "ix_deliveries_heads",
            "group_id",
            "seq",
            postgresql_where=sa.text(HEADS_PREDICATE),
            sqlite_where=sa.text(HEADS_PREDICATE),
        ),  # fmt: skip
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    ref_id: str = Field(max_length=255, unique=True)
    ref_topic: str = Field(max_length=255)
    group_id: str = Field(max_length=256)
    source: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=32)
    operation: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_type=JSON, nullable=False)
    state: str = Field(default=PENDING, max_length=16)
    step: int = 0
    attempts: int = 0
    failures: int = 0
    outcome: str | None = Field(default=None, max_length=16)
    detail: str = Field(default="", max_length=2000)
    platform_message_id: str | None = Field(default=None, max_length=255)
    claim_token: str | None = Field(default=None, max_length=64)
    next_attempt_at: datetime = utc_column()
    lease_until: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class DeliveryOutbox(OutboxRecord, table=True):
    """Receipts waiting for Kafka (the kernel outbox's columns)."""

    __tablename__ = "delivery_outbox"
    __table_args__ = (sa.Index("ix_delivery_outbox_pending", "published_at", "seq"),)
