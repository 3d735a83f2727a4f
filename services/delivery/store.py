"""The queue in the database: insert records once, claim due group heads, give claims back.

Claims follow the kernel outbox (services/common/outbox.py): on PostgreSQL one statement
locks the due rows with FOR UPDATE SKIP LOCKED, marks them and returns them (a CTE under
an UPDATE … RETURNING: one round trip, no ORM load); SQLite has no row locks, so each
candidate is taken by a conditional UPDATE that only one process can win.
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
    # One statement for any number of rows (its compiled form is cached; SQLAlchemy batches
    # the parameter sets into multi-row VALUES), the new rows counted by what it returns.
    statement = (
        insert(TABLE).on_conflict_do_nothing(index_elements=["ref_id"]).returning(TABLE.c.seq)
    )
    return len(session.execute(statement, list(rows)).all())


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


def _take(session: Session, seq: int, token: str, now: Any, lease: timedelta) -> bool:
    """Mark one row claimed if it is still due (SQLite: only one process can win)."""
    statement = (
        sa.update(TABLE)
        .where(TABLE.c.seq == seq, _due(now))
        .values(
            state=IN_FLIGHT,
            attempts=TABLE.c.attempts + 1,
            claim_token=token,
            lease_until=now + lease,
            updated_at=now,
        )
    )
    return int(session.execute(statement).rowcount or 0) == 1  # type: ignore[attr-defined]


def _claim_locked(
    session: Session, token: str, now: Any, lease: timedelta, busy: Collection[str], limit: int
) -> list[tuple[Delivery, bool]]:
    """PostgreSQL: lock, mark and return the due heads in one statement."""
    found = _candidates(now, busy, limit).with_for_update(skip_locked=True, of=TABLE).cte("found")
    statement = (
        sa.update(TABLE)
        .where(TABLE.c.seq == found.c.seq)
        .values(
            state=IN_FLIGHT,
            attempts=TABLE.c.attempts + 1,
            claim_token=token,
            lease_until=now + lease,
            updated_at=now,
        )
        .returning(*TABLE.c, found.c.state.label("was"))
    )
    claimed = [
        (Delivery(**{c.name: r[c.name] for c in TABLE.c}), r.was == IN_FLIGHT)
        for r in session.execute(statement).mappings()
    ]
    return sorted(claimed, key=lambda claim: claim[0].seq or 0)


def _claim_one_by_one(
    session: Session, token: str, now: Any, lease: timedelta, busy: Collection[str], limit: int
) -> list[tuple[Delivery, bool]]:
    """SQLite: take each candidate with a conditional UPDATE, then read the rows taken."""
    found = [
        r
        for r in session.execute(_candidates(now, busy, limit)).all()
        if _take(session, r.seq, token, now, lease)
    ]
    if not found:
        return []
    recovered = {r.seq for r in found if r.state == IN_FLIGHT}
    rows = session.exec(
        select(Delivery).where(col(Delivery.claim_token) == token).order_by(col(Delivery.seq))
    ).all()
    return [(row, row.seq in recovered) for row in rows]


def claim_due(
    engine: Engine, *, busy: Collection[str], limit: int, lease: timedelta = LEASE
) -> list[Claim]:
    """Claim up to `limit` due group heads (skipping groups in `busy`), attempts counted."""
    token, now = uuid.uuid4().hex, utcnow()
    claim = _claim_locked if engine.dialect.name == "postgresql" else _claim_one_by_one
    with Session(engine, expire_on_commit=False) as session:
        claimed = claim(session, token, now, lease, busy, limit)
        session.commit()
    return [Claim(row, token, recovered) for row, recovered in claimed]


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
