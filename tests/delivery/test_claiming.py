"""Claims made without a claim transaction: inserted claimed, and the next head claimed by settling.

Both keep the queue's rules: a group has at most one row in flight and its rows run in
order; a claimed row is in flight with its attempt counted and a lease before any call;
a replayed record inserts nothing and is not claimed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, select

from services.common.db import make_engine, utcnow
from services.delivery.deliveries import retry_delivery
from services.delivery.models import DONE, IN_FLIGHT, PENDING, Delivery, DeliveryOutbox
from services.delivery.policy import Decision
from services.delivery.settle import Settlement, settle_and_claim
from services.delivery.settler import Settler
from services.delivery.store import claim_due, claim_heads, insert_claiming, insert_new

DELIVERED = Decision(True, "delivered", "ok")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    tables = [Delivery.__table__, DeliveryOutbox.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=tables)
    return engine


@pytest.fixture(params=["sqlite", "suite"])
def queue_engine(request: pytest.FixtureRequest, engine_with_tables: Any) -> Engine:
    """A queue of its own on SQLite, and in a schema of its own on the suite's database
    (PostgreSQL when one is reachable, where claims take another path)."""
    tables = [Delivery.__table__, DeliveryOutbox.__table__]  # type: ignore[attr-defined]
    engine: Engine = engine_with_tables(request.param, tables)
    return engine


def _row(ref_id: str, group_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": f"dl_{ref_id}",
        "ref_id": ref_id,
        "ref_topic": "t",
        "group_id": group_id,
        "source": "tg",
        "platform": "telegram",
        "operation": "delete",
        "payload": {"id": ref_id, "group_id": group_id, "action": "delete"},
        "state": PENDING,
        "step": 0,
        "attempts": 0,
        "failures": 0,
        "detail": "",
        "next_attempt_at": now - timedelta(seconds=1),
        "created_at": now,
        "updated_at": now,
    }


def _insert(engine: Engine, rows: list[dict[str, Any]], room: int) -> tuple[int, list[Any]]:
    with Session(engine) as session:
        inserted, claims = insert_claiming(session, rows, room=room)
        session.commit()
    return inserted, claims


def _states(engine: Engine) -> dict[str, tuple[str, int]]:
    with Session(engine) as session:
        return {r.ref_id: (r.state, r.attempts) for r in session.exec(select(Delivery)).all()}


def test_the_first_record_of_an_idle_group_is_inserted_claimed(engine):
    _insert(engine, [_row("old", "g2")], room=0)  # g2 already has a row waiting
    rows = [_row("a1", "g1"), _row("a2", "g1"), _row("b1", "g2"), _row("c1", "g3")]
    inserted, claims = _insert(engine, rows, room=10)
    assert inserted == 4
    assert [c.row.id for c in claims] == ["dl_a1", "dl_c1"]  # g2 waits behind "old"
    assert all(not c.recovered and c.row.seq for c in claims)
    states = _states(engine)
    assert states["a1"] == (IN_FLIGHT, 1) and states["c1"] == (IN_FLIGHT, 1)
    assert states["a2"] == (PENDING, 0) and states["b1"] == (PENDING, 0)
    # Nothing else of g1 or g3 can be claimed while their heads are in flight.
    assert [c.row.id for c in claim_due(engine, busy=(), limit=10)] == ["dl_old"]


def test_room_bounds_the_claims_and_a_replay_is_not_claimed(engine):
    _, claims = _insert(engine, [_row("a1", "g1"), _row("b1", "g2")], room=1)
    assert [c.row.id for c in claims] == ["dl_a1"]
    settle_and_claim(
        engine, [Settlement(claims[0].row.seq, claims[0].token, DELIVERED)], topic="receipts"
    )
    inserted, replayed = _insert(engine, [_row("a1", "g1")], room=5)
    assert inserted == 0 and replayed == []


def test_settling_claims_the_next_head_of_the_same_groups(engine):
    rows = [_row("a1", "g1"), _row("a2", "g1"), _row("a3", "g1"), _row("b1", "g2")]
    _, claims = _insert(engine, rows, room=10)
    first = next(c for c in claims if c.row.id == "dl_a1")
    results, follow = settle_and_claim(
        engine, [Settlement(first.row.seq, first.token, DELIVERED)], topic="receipts", refill=1
    )
    assert results[0] is not None and results[0].outcome == "delivered"
    assert [c.row.id for c in follow] == ["dl_a2"]  # g1's next, in order; g2 is not touched
    states = _states(engine)
    assert states["a1"] == (DONE, 1) and states["a2"] == (IN_FLIGHT, 1)
    assert states["a3"] == (PENDING, 0) and states["b1"] == (IN_FLIGHT, 1)
    # A refill of 0 claims nothing; a group with nothing left gives nothing.
    second = follow[0]
    _, none = settle_and_claim(
        engine, [Settlement(second.row.seq, second.token, DELIVERED)], topic="receipts"
    )
    assert none == [] and _states(engine)["a3"] == (PENDING, 0)


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))
    return seen


def test_settling_claims_only_where_a_next_head_can_be(engine):
    _, claims = _insert(engine, [_row("a1", "g1"), _row("b1", "g2")], room=10)
    a1, b1 = sorted(claims, key=lambda c: c.row.id)
    seen = _statements(engine)
    # g1 has nothing else: its row is read, written and receipted; no claim is asked for.
    results, follow = settle_and_claim(
        engine, [Settlement(a1.row.seq, a1.token, DELIVERED)], topic="receipts", refill=1
    )
    assert results[0] is not None and follow == []
    assert seen.count("SELECT") == 1  # the locked read only: no claim looked for a next head
    # A step that leaves the record due again (its next step) is claimed at once.
    seen.clear()
    results, follow = settle_and_claim(
        engine,
        [Settlement(b1.row.seq, b1.token, DELIVERED, label="delete", last_step=False)],
        topic="receipts",
        refill=1,
    )
    assert results == [None] and [(c.row.id, c.row.step) for c in follow] == [("dl_b1", 1)]
    assert _states(engine)["b1"] == (IN_FLIGHT, 2)


def test_results_of_calls_made_together_settle_in_one_transaction(engine):
    _, claims = _insert(engine, [_row("a1", "g1"), _row("b1", "g2")], room=10)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    calling = [2]

    async def run() -> list[Any]:
        # A long linger: the write starts when the last call under way has submitted.
        settler = Settler(engine, "receipts", linger=60.0, calling=lambda: calling[0])

        async def call_then_settle(claim: Any, turns: int) -> Any:
            for _ in range(turns):  # the second call ends a few loop turns after the first
                await asyncio.sleep(0)
            calling[0] -= 1
            return await settler.submit(Settlement(claim.row.seq, claim.token, DELIVERED))

        return await asyncio.gather(call_then_settle(claims[0], 0), call_then_settle(claims[1], 5))

    rows = asyncio.run(run())
    assert [r.outcome for r in rows] == ["delivered", "delivered"]
    assert len(commits) == 1


def test_each_group_head_is_claimed_however_long_its_queue(queue_engine):
    """Only heads, whatever is queued behind them: a group with 3,000 rows waiting, one whose
    head is in flight (leased, then with its lease run out), one whose head is not due yet,
    one whose earlier rows are done; claimed among all groups, among some, and around
    busy ones."""
    now = utcnow()
    rows = [_row(f"big{i}", "big") for i in range(3000)]
    rows += [_row(f"{g}{i}", g) for g in ("leased", "lapsed", "later", "done") for i in range(3)]
    rows += [_row(f"{g}0", g) for g in ("o1", "o2")]
    with queue_engine.begin() as conn:
        assert insert_new(conn, rows) == len(rows)
    t = Delivery.__table__  # type: ignore[attr-defined]
    changes: dict[str, dict[str, Any]] = {
        "leased0": {"state": IN_FLIGHT, "lease_until": now + timedelta(minutes=5)},
        "lapsed0": {"state": IN_FLIGHT, "lease_until": now - timedelta(seconds=1)},
        "later0": {"next_attempt_at": now + timedelta(minutes=5)},
        "done0": {"state": DONE, "outcome": "delivered"},
        "done1": {"state": DONE, "outcome": "delivered"},
    }
    with queue_engine.begin() as conn:
        for ref_id, values in changes.items():
            conn.execute(sa.update(t).where(t.c.ref_id == ref_id).values(values))

    def claimed(**among: Any) -> list[str]:
        with Session(queue_engine) as session:
            claims = claim_heads(session, limit=100, **among)
            session.rollback()  # each question asked of the same queue
        return sorted(c.row.id.removeprefix("dl_") for c in claims)

    assert claimed() == ["big0", "done2", "lapsed0", "o10", "o20"]
    assert claimed(groups=["big", "later", "leased", "done", "nowhere"]) == ["big0", "done2"]
    assert claimed(busy=["big", "o1"]) == ["done2", "lapsed0", "o20"]
    assert claimed(groups=["big", "o1"], busy=["o1"]) == ["big0"]
    assert claimed(groups=[]) == []
    with Session(queue_engine) as session:
        assert len(claim_heads(session, limit=2)) == 2


def test_a_retried_row_queues_behind_its_group_and_never_beside_one_in_flight(queue_engine):
    """An operator's retry of a group's old failed row: with its old `seq` it would be the
    group's head again while the newer head is in flight. It goes to the back instead."""
    now = utcnow()
    group = "retried"
    with queue_engine.begin() as conn:
        insert_new(conn, [_row(f"r{i}", group) for i in range(3)] + [_row("x0", "other")])
    t = Delivery.__table__  # type: ignore[attr-defined]
    with queue_engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.ref_id == "r0").values(state=DONE, outcome="forbidden"))
        conn.execute(
            sa.update(t)
            .where(t.c.ref_id == "r1")
            .values(state=IN_FLIGHT, lease_until=now + timedelta(minutes=5))
        )
    with Session(queue_engine) as session:
        row = retry_delivery(session, group_id=group, delivery_id="dl_r0")
        session.commit()
        assert (row.state, row.outcome, row.failures) == (PENDING, None, 0)
    with Session(queue_engine) as session:
        order = session.exec(
            select(Delivery.ref_id).where(Delivery.group_id == group).order_by(Delivery.seq)
        ).all()
        assert order == ["r1", "r2", "r0"]
        assert [c.row.id for c in claim_heads(session, limit=10, groups=[group])] == []
        session.rollback()
    with queue_engine.begin() as conn:  # the row in flight, and the one after it, are done
        conn.execute(sa.update(t).where(t.c.ref_id.in_(["r1", "r2"])).values(state=DONE))
        insert_new(conn, [_row("r3", group)])  # a record that comes after the retry
    with Session(queue_engine) as session:
        assert [c.row.id for c in claim_heads(session, limit=10, groups=[group])] == ["dl_r0"]
