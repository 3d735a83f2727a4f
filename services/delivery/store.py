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
from sqlalchemy import Engine
from sqlmodel import Session

from services.common.db import Db, dialect_of, insert_rows, rows_params, utcnow
from services.delivery.models import IN_FLIGHT, PENDING, UNFINISHED, Delivery

LEASE = timedelta(seconds=30)  # default; DELIVERY_LEASE_SECONDS, above the 10 s call timeout
TABLE: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


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
def _insert(dialect: str, names: tuple[str, ...]) -> Any:
    """One statement for any number of rows with the keys `names`, built once: on
    PostgreSQL the kernel's `insert_rows` (the rows as one JSON parameter, so the text
    never changes and is parsed and prepared once; payloads keep their JSON text), on
    SQLite an executemany; the new rows are known by what it returns."""
    insert = insert_rows(TABLE, names, postgres=dialect == "postgresql", keep_json_text=True)
    return insert.on_conflict_do_nothing(index_elements=["ref_id"]).returning(
        TABLE.c.seq, TABLE.c.ref_id, TABLE.c.claim_token
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
    statement = _insert(dialect_of(session), tuple(params[0]))
    inserted = session.execute(statement, rows_params(session, params)).all()
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


def _due(t: Any = TABLE.c) -> sa.ColumnElement[bool]:
    """Whether a row (`t`: the table's columns, or a subquery's) may be claimed now."""
    return sa.or_(
        sa.and_(t.state == PENDING, t.next_attempt_at <= NOW),
        sa.and_(t.state == IN_FLIGHT, t.lease_until < NOW),
    )


def _unfinished() -> sa.ColumnElement[bool]:
    # The states as literals in the SQL text, not parameters: a prepared statement's generic
    # plan can then still prove the partial index ix_deliveries_heads's predicate.
    states: sa.BindParameter[str] = sa.bindparam(
        "b_unfinished", list(UNFINISHED), expanding=True, literal_execute=True
    )
    return TABLE.c.state.in_(states)


@functools.cache
def _due_heads(busy: bool, groups: bool, dialect: str) -> sa.Select[Any]:
    """The due group heads, oldest due first, at most `b_limit` (among `b_groups` and not
    of `b_busy` if asked): `seq` and `state`.

    A head is its group's oldest unfinished row. The query reads each unfinished row once
    (the partial index ix_deliveries_heads, in group order), ~0.1 µs per row on PostgreSQL
    whether the rows are spread over many groups or queued behind one, and it is shaped so
    that no estimate of the planner's can make it read them again per row: PostgreSQL takes
    each group's first row (DISTINCT ON) and filters those; SQLite runs the uncorrelated
    `IN (heads)` once. The queries it replaces were quadratic in a group's backlog on
    PostgreSQL: "an unfinished row with no older unfinished row in its group" (NOT EXISTS)
    became a hash anti-join comparing every pair of a group's queued rows (10,000 rows
    queued behind one head: 2 s per claim round, for every group; 50,000: 51 s), and the
    heads joined back to the table became, with statistics from before the backlog, a
    nested loop computing them again for every queued row.
    """
    t = TABLE.c
    mine = [_unfinished()]
    if groups:
        mine.append(t.group_id.in_(sa.bindparam("b_groups", expanding=True)))
    if busy:
        mine.append(t.group_id.not_in(sa.bindparam("b_busy", expanding=True)))
    limit: sa.BindParameter[int] = sa.bindparam("b_limit")
    if dialect == "postgresql":
        firsts = (
            sa.select(t.seq, t.state, t.next_attempt_at, t.lease_until)
            .where(*mine)
            .distinct(t.group_id)
            .order_by(t.group_id, t.seq)
            .subquery("firsts")
        )
        h = firsts.c
        return (
            sa.select(h.seq, h.state).where(_due(h)).order_by(h.next_attempt_at, h.seq).limit(limit)
        )
    heads = sa.select(sa.func.min(t.seq)).where(*mine).group_by(t.group_id)
    return (
        sa.select(t.seq, t.state)
        .where(t.seq.in_(heads), _due())
        .order_by(t.next_attempt_at, t.seq)
        .limit(limit)
    )


@functools.cache
def _take_statement() -> sa.Update:
    return sa.update(TABLE).where(TABLE.c.seq == sa.bindparam("b_seq"), _due()).values(CLAIMED)


@functools.cache
def _claim_statement() -> sa.Update:
    """PostgreSQL: lock, mark and return the rows `b_seqs` still due (SKIP LOCKED: another
    process's claim of one makes it skipped, not waited for)."""
    seqs: sa.BindParameter[int] = sa.bindparam("b_seqs", expanding=True, literal_execute=True)
    found = (
        sa.select(TABLE.c.seq, TABLE.c.state)
        .where(TABLE.c.seq.in_(seqs), _due())
        .with_for_update(skip_locked=True, of=TABLE)
        .cte("found")
    )
    return (
        sa.update(TABLE)
        .where(TABLE.c.seq == found.c.seq)
        .values(CLAIMED)
        .returning(*(TABLE.c[name] for name in QUEUED_COLUMNS), found.c.state.label("was"))
    )


def _params(token: str, now: Any, lease: timedelta) -> dict[str, Any]:
    return {"b_now": now, "b_token": token, "b_lease_until": now + lease, "b_updated_at": now}


def _claim_locked(
    session: Db, token: str, now: Any, lease: timedelta, heads: Sequence[Any]
) -> list[tuple[Queued, bool]]:
    """PostgreSQL: lock, mark and return the due heads found, in one statement."""
    params = {**_params(token, now, lease), "b_seqs": [h.seq for h in heads]}
    found = session.execute(_claim_statement(), params)
    claimed = [(Queued.of(r), r.was == IN_FLIGHT) for r in found]
    return sorted(claimed, key=lambda claim: claim[0].seq)


def _claim_one_by_one(
    session: Db, token: str, now: Any, lease: timedelta, heads: Sequence[Any]
) -> list[tuple[Queued, bool]]:
    """SQLite: take each due head found with a conditional UPDATE, then read the rows taken."""
    params = _params(token, now, lease)
    found = [
        r
        for r in heads
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
    asked: dict[str, Any] = {"b_now": now, "b_limit": limit}
    if busy:
        asked["b_busy"] = list(busy)
    if groups is not None:
        asked["b_groups"] = list(groups)
    dialect = dialect_of(session)
    heads = session.execute(_due_heads(bool(busy), groups is not None, dialect), asked).all()
    if not heads:
        return []
    claim = _claim_locked if dialect == "postgresql" else _claim_one_by_one
    claimed = claim(session, token, now, lease, heads)
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
