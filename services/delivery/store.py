"""The queue in the database: insert records once, claim due group heads, give claims back.

The consumer inserts a record already claimed when its group has nothing unfinished
(`insert_claiming`): the row is written in flight, its attempt counted and its lease set,
in the transaction that stores it, and goes straight to the dispatcher — no claim round
trip and no wake-up between the commit and the call. Every other row waits as `pending`
for a claim.

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

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from services.common.db import utcnow
from services.delivery.models import IN_FLIGHT, PENDING, UNFINISHED, Delivery

LEASE = timedelta(seconds=30)  # default; DELIVERY_LEASE_SECONDS, above the 10 s call timeout
TABLE: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


# Where the queue's statements run: a Session, or a Core Connection in a transaction (the
# consumer's insert and settling: an ORM Session and its transaction cost ≈ 0.3 ms more
# client CPU per transaction than `engine.begin()`, for statements that are all Core).
Db = Session | Connection


def dialect_of(db: Db) -> str:
    """The database's dialect name (`postgresql`, `sqlite`)."""
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class Queued:
    """What the dispatcher reads of a claimed row (plain attributes: no ORM object per row)."""

    seq: int
    id: str
    group_id: str
    source: str | None
    platform: str | None
    payload: dict[str, Any]
    step: int
    failures: int
    detail: str

    @classmethod
    def of(cls, row: Any) -> Queued:
        """From a result row or an insert's parameters (anything with these names)."""
        get = row.__getitem__ if isinstance(row, dict) else row._mapping.__getitem__
        return cls(*(get(name) for name in QUEUED_COLUMNS))


QUEUED_COLUMNS = ("seq", "id", "group_id", "source", "platform", "payload", "step", "failures",
                  "detail")  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """A row this process carries out now; `recovered` when a crash left it in flight."""

    row: Queued
    token: str
    recovered: bool


def insert_new(session: Db, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose `ref_id` is new (a replay inserts nothing), none claimed; how many."""
    return insert_claiming(session, rows, room=0)[0]


@functools.cache
def _busy_groups() -> sa.Select[Any]:
    """Which of `b_groups` have an unfinished row."""
    t = TABLE.c
    groups: sa.BindParameter[str] = sa.bindparam("b_groups", expanding=True)
    return sa.select(t.group_id).where(t.group_id.in_(groups), t.state.in_(UNFINISHED)).distinct()


@functools.cache
def _insert(dialect: str) -> sa.Insert:
    """One statement for any number of rows, built once (SQLAlchemy batches the parameter
    sets into multi-row VALUES); the new rows are known by what it returns."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(TABLE)
        .on_conflict_do_nothing(index_elements=["ref_id"])
        .returning(TABLE.c.seq, TABLE.c.ref_id, TABLE.c.claim_token)
    )


def insert_claiming(
    session: Db, rows: Sequence[dict[str, Any]], *, room: int, lease: timedelta = LEASE
) -> tuple[int, list[Claim]]:
    """Insert rows whose `ref_id` is new; claim up to `room` of them as they are inserted.

    A row is inserted claimed (in flight, attempt 1, a lease) only when it is the first of
    the batch for a group with no unfinished row: it is then its group's head, exactly as a
    claim would have found it, and no other row of the group can be claimed while it is in
    flight. Returns how many rows were inserted and the claims among them (a replayed
    record inserts nothing and is not claimed). The caller commits, then carries them out.
    """
    if not rows:
        return 0, []
    token, now = uuid.uuid4().hex, utcnow()
    free: set[str] = set()
    if room > 0:
        groups = {row["group_id"] for row in rows}
        busy = session.execute(_busy_groups(), {"b_groups": list(groups)}).scalars()
        free = groups.difference(busy)
    params: list[dict[str, Any]] = []
    claimed: dict[str, dict[str, Any]] = {}
    for row in rows:
        row = {**row, "claim_token": None, "lease_until": None}
        if row["group_id"] in free and len(claimed) < room:
            free.discard(row["group_id"])
            row.update(state=IN_FLIGHT, attempts=1, claim_token=token, lease_until=now + lease)
            claimed[row["ref_id"]] = row
        params.append(row)
    inserted = session.execute(_insert(dialect_of(session)), params).all()
    claims = [
        Claim(Queued.of({**claimed[r.ref_id], "seq": r.seq}), token, recovered=False)
        for r in inserted
        if r.claim_token == token
    ]
    return len(inserted), sorted(claims, key=lambda claim: claim.row.seq)


# The claim statements are built once (bound parameters: `now`, the token, the lease's end,
# the limit, the groups): building a CTE under an UPDATE … RETURNING per round, and its
# cache key, cost about as much Python time as running it.
NOW = sa.bindparam("b_now", type_=TABLE.c.next_attempt_at.type)
CLAIMED = {
    "state": IN_FLIGHT,
    "attempts": TABLE.c.attempts + 1,
    "claim_token": sa.bindparam("b_token", type_=TABLE.c.claim_token.type),
    "lease_until": sa.bindparam("b_lease_until", type_=TABLE.c.lease_until.type),
    "updated_at": sa.bindparam("b_updated_at", type_=TABLE.c.updated_at.type),
}


def _due() -> sa.ColumnElement[bool]:
    t = TABLE.c
    return sa.or_(
        sa.and_(t.state == PENDING, t.next_attempt_at <= NOW),
        sa.and_(t.state == IN_FLIGHT, t.lease_until < NOW),
    )


@functools.cache
def _candidates(busy: bool, groups: bool) -> sa.Select[Any]:
    """Due group heads (parameters `b_now`, `b_limit`, and `b_busy` / `b_groups` if asked)."""
    t, other = TABLE.c, TABLE.alias("older")
    # A head is an unfinished row with no older unfinished row in its group. Asked as NOT
    # EXISTS (one index probe per row, stopping at the first older row found), not as
    # `seq = min(seq)` of the group: that aggregate read every unfinished row of the group
    # for each of them, so a group with 900 rows queued (a backlog, a paused source) made
    # every claim round take 0.6 s, growing with the square of the backlog.
    older = sa.exists().where(
        other.c.group_id == t.group_id, other.c.state.in_(UNFINISHED), other.c.seq < t.seq
    )
    query = sa.select(t.seq, t.state).where(t.state.in_(UNFINISHED), ~older, _due())
    if busy:
        query = query.where(t.group_id.not_in(sa.bindparam("b_busy", expanding=True)))
    if groups:
        query = query.where(t.group_id.in_(sa.bindparam("b_groups", expanding=True)))
    return query.order_by(t.next_attempt_at, t.seq).limit(sa.bindparam("b_limit"))


@functools.cache
def _take_statement() -> sa.Update:
    return sa.update(TABLE).where(TABLE.c.seq == sa.bindparam("b_seq"), _due()).values(CLAIMED)


@functools.cache
def _claim_statement(busy: bool, groups: bool) -> sa.Update:
    found = _candidates(busy, groups).with_for_update(skip_locked=True, of=TABLE).cte("found")
    return (
        sa.update(TABLE)
        .where(TABLE.c.seq == found.c.seq)
        .values(CLAIMED)
        .returning(*(TABLE.c[name] for name in QUEUED_COLUMNS), found.c.state.label("was"))
    )


def _params(
    token: str, now: Any, lease: timedelta, busy: Collection[str], limit: int,
    groups: Collection[str] | None,
) -> dict[str, Any]:  # fmt: skip
    params = {"b_now": now, "b_token": token, "b_lease_until": now + lease,
              "b_updated_at": now, "b_limit": limit}  # fmt: skip
    if busy:
        params["b_busy"] = list(busy)
    if groups is not None:
        params["b_groups"] = list(groups)
    return params


Among = tuple[Collection[str], int, Collection[str] | None]  # busy, limit, groups


def _claim_locked(
    session: Db, token: str, now: Any, lease: timedelta, among: Among
) -> list[tuple[Queued, bool]]:
    """PostgreSQL: lock, mark and return the due heads in one statement."""
    busy, _, groups = among
    statement = _claim_statement(bool(busy), groups is not None)
    found = session.execute(statement, _params(token, now, lease, *among))
    claimed = [(Queued.of(r), r.was == IN_FLIGHT) for r in found]
    return sorted(claimed, key=lambda claim: claim[0].seq)


def _claim_one_by_one(
    session: Db, token: str, now: Any, lease: timedelta, among: Among
) -> list[tuple[Queued, bool]]:
    """SQLite: take each candidate with a conditional UPDATE, then read the rows taken."""
    busy, _, groups = among
    params = _params(token, now, lease, *among)
    candidates = session.execute(_candidates(bool(busy), groups is not None), params).all()
    found = [
        r
        for r in candidates
        if int(session.execute(_take_statement(), {**params, "b_seq": r.seq}).rowcount or 0) == 1  # type: ignore[attr-defined]
    ]
    if not found:
        return []
    recovered = {r.seq for r in found if r.state == IN_FLIGHT}
    rows = session.execute(
        sa.select(*(TABLE.c[name] for name in QUEUED_COLUMNS))
        .where(TABLE.c.claim_token == token)
        .order_by(TABLE.c.seq)
    )
    return [(Queued.of(row), row.seq in recovered) for row in rows]


def claim_due(
    engine: Engine, *, busy: Collection[str], limit: int, lease: timedelta = LEASE
) -> list[Claim]:
    """Claim up to `limit` due group heads (skipping groups in `busy`), attempts counted."""
    with Session(engine, expire_on_commit=False) as session:
        claims = claim_heads(session, limit=limit, lease=lease, busy=busy)
        session.commit()
    return claims


def claim_heads(
    session: Db,
    *,
    limit: int,
    lease: timedelta = LEASE,
    busy: Collection[str] = (),
    groups: Collection[str] | None = None,
) -> list[Claim]:
    """Claim up to `limit` due group heads (only among `groups` if given) in the session's
    transaction; the caller commits. Settling claims the next heads of the groups it just
    finished with this, in its own transaction (settle.py)."""
    if limit <= 0 or (groups is not None and not groups):
        return []
    token, now = uuid.uuid4().hex, utcnow()
    dialect = dialect_of(session)
    claim = _claim_locked if dialect == "postgresql" else _claim_one_by_one
    claimed = claim(session, token, now, lease, (busy, limit, groups))
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
