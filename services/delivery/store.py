"""The queue in the database: insert records once, claim due group heads, give claims back.

Claims follow the kernel outbox (services/common/outbox.py): on PostgreSQL the due rows
are locked with FOR UPDATE SKIP LOCKED and marked in that transaction; SQLite has no row
locks, so each candidate is taken by a conditional UPDATE that only one process can win.
Only a group's oldest unfinished row is a candidate, so a group has at most one record in
flight across every replica and its records run in order. A claim counts the attempt and
sets a lease; a row still `in_flight` after its lease is a crash's unknown outcome and
is claimed again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.common.db import utcnow
from services.delivery.models import IN_FLIGHT, PENDING, UNFINISHED, Delivery

LEASE = timedelta(seconds=30)  # default; DELIVERY_LEASE_SECONDS, above the 10 s call timeout
TABLE: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claim:
    """A row this process carries out now; `recovered` when a crash left it in flight."""

    row: Delivery
    token: str
    recovered: bool


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose `ref_id` is new (a replay inserts nothing); return how many."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(TABLE).values(list(rows)).on_conflict_do_nothing(index_elements=["ref_id"])
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _due(now: Any) -> sa.ColumnElement[bool]:
    t = TABLE.c
    return sa.or_(
        sa.and_(t.state == PENDING, t.next_attempt_at <= now),
        sa.and_(t.state == IN_FLIGHT, t.lease_until < now),
    )


def _candidates(now: Any, busy: Collection[str], limit: int) -> sa.Select[Any]:
    t, other = TABLE.c, TABLE.alias("older")
    head = (
        sa.select(sa.func.min(other.c.seq))
        .where(other.c.group_id == t.group_id, other.c.state.in_(UNFINISHED))
        .scalar_subquery()
    )
    query = sa.select(t.seq, t.state).where(t.state.in_(UNFINISHED), t.seq == head, _due(now))
    if busy:
        query = query.where(t.group_id.not_in(list(busy)))
    return query.order_by(t.next_attempt_at, t.seq).limit(limit)


def _mark(
    session: Session, seqs: list[int], token: str, now: Any, *, check: bool, lease: timedelta
) -> int:
    statement = (
        sa.update(TABLE)
        .where(TABLE.c.seq.in_(seqs))
        .values(
            state=IN_FLIGHT,
            attempts=TABLE.c.attempts + 1,
            claim_token=token,
            lease_until=now + lease,
            updated_at=now,
        )
    )
    if check:
        statement = statement.where(_due(now))
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def claim_due(
    engine: Engine, *, busy: Collection[str], limit: int, lease: timedelta = LEASE
) -> list[Claim]:
    """Claim up to `limit` due group heads (skipping groups in `busy`), attempts counted."""
    token, now = uuid.uuid4().hex, utcnow()
    recovered: set[int] = set()
    with Session(engine, expire_on_commit=False) as session:
        query = _candidates(now, busy, limit)
        if engine.dialect.name == "postgresql":
            found = session.execute(query.with_for_update(skip_locked=True, of=TABLE)).all()
            if found:
                _mark(session, [r.seq for r in found], token, now, check=False, lease=lease)
        else:
            found = [
                r
                for r in session.execute(query).all()
                if _mark(session, [r.seq], token, now, check=True, lease=lease) == 1
            ]
        recovered = {r.seq for r in found if r.state == IN_FLIGHT}
        session.commit()
        if not found:
            return []
        rows = session.exec(
            select(Delivery).where(col(Delivery.claim_token) == token).order_by(col(Delivery.seq))
        ).all()
    return [Claim(row, token, row.seq in recovered) for row in rows]


def release(engine: Engine, claim: Claim, *, wait: float) -> None:
    """Give a claim back uncalled (pacing said wait): not an attempt, due after `wait`."""
    now = utcnow()
    with Session(engine) as session:
        session.execute(
            sa.update(TABLE)
            .where(TABLE.c.seq == claim.row.seq, TABLE.c.claim_token == claim.token)
            .values(
                state=PENDING,
                attempts=TABLE.c.attempts - 1,
                claim_token=None,
                lease_until=None,
                next_attempt_at=now + timedelta(seconds=wait),
                updated_at=now,
            )
        )
        session.commit()


def queue_depth(engine: Engine) -> dict[str, int]:
    """Unfinished rows per source (`-` for rows without one)."""
    with Session(engine) as session:
        rows = session.execute(
            sa.select(TABLE.c.source, sa.func.count())
            .where(TABLE.c.state.in_(UNFINISHED))
            .group_by(TABLE.c.source)
        ).all()
    return {source or "-": int(count) for source, count in rows}
