"""Settling a round's results in one transaction: each row guarded by its own claim token."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

import services.delivery.settler as settler_module
from services.common.db import make_engine, utcnow
from services.delivery.models import DONE, IN_FLIGHT, PENDING, Delivery, DeliveryOutbox
from services.delivery.policy import Decision
from services.delivery.settle import (
    Row,
    Settlement,
    settle_all,
    settle_and_claim,
    without_call,
)
from services.delivery.settler import Settler
from services.delivery.store import claim_due, insert_new

DONE_OK = Decision(True, "delivered", "ok")
RETRY = Decision(False, "failed", "503", delay=5.0, counts_failure=True)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    tables = [Delivery.__table__, DeliveryOutbox.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=tables)
    return engine


def _insert(engine: Engine, groups: int) -> None:
    now = utcnow()
    rows = [
        {
            "id": f"dl_{i}",
            "ref_id": f"r{i}",
            "ref_topic": "t",
            "group_id": f"g{i}",
            "source": "tg",
            "platform": "telegram",
            "operation": "delete",
            "payload": {},
            "state": PENDING,
            "next_attempt_at": now - timedelta(seconds=1),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(groups)
    ]
    with Session(engine) as session:
        insert_new(session, rows)
        session.commit()


def _rows(engine: Engine) -> dict[str, Delivery]:
    with Session(engine) as session:
        return {r.id: r for r in session.exec(select(Delivery)).all()}


def _receipts(engine: Engine) -> int:
    with Session(engine) as session:
        return int(
            session.execute(sa.select(sa.func.count()).select_from(DeliveryOutbox)).scalar_one()
        )


def test_one_transaction_settles_each_row_by_its_own_token(engine):
    _insert(engine, 4)
    claims = claim_due(engine, busy=(), limit=10)
    assert len(claims) == 4
    a, b, c, d = claims
    found = settle_all(
        engine,
        [
            Settlement(a.row.seq or 0, a.token, DONE_OK, message_id="m1"),
            Settlement(b.row.seq or 0, b.token, RETRY),
            Settlement(c.row.seq or 0, "someone-else", DONE_OK),
            without_call(d.row.seq or 0, d.token, "no_route", "no source"),
        ],
        topic="receipts",
    )
    assert [r is not None for r in found] == [True, False, False, True]
    rows = _rows(engine)
    assert (rows[a.row.id].state, rows[a.row.id].outcome) == (DONE, "delivered")
    assert rows[a.row.id].platform_message_id == "m1"
    assert (rows[b.row.id].state, rows[b.row.id].failures) == (PENDING, 1)
    assert rows[c.row.id].state == IN_FLIGHT  # not this claim's any more: left alone
    assert (rows[d.row.id].outcome, rows[d.row.id].detail) == ("no_route", "no source")
    assert _receipts(engine) == 2  # exactly one per final outcome


def test_settler_groups_concurrent_results_and_answers_each(engine, monkeypatch):
    _insert(engine, 30)
    claims = claim_due(engine, busy=(), limit=30)
    calls: list[int] = []

    def counting(engine, items, *, topic, **claiming):
        calls.append(len(items))
        return settle_and_claim(engine, items, topic=topic, **claiming)

    monkeypatch.setattr(settler_module, "settle_and_claim", counting)

    async def run() -> list[Delivery | None]:
        settler = Settler(engine, "receipts")
        items = [Settlement(c.row.seq or 0, c.token, DONE_OK) for c in claims]
        return await asyncio.gather(*(settler.submit(item) for item in items))

    found = asyncio.run(run())
    assert all(r is not None and r.outcome == "delivered" for r in found)
    assert sum(calls) == 30 and len(calls) < 30
    assert _receipts(engine) == 30


def test_a_failed_batch_is_written_one_by_one_and_only_the_bad_result_raises(engine, monkeypatch):
    _insert(engine, 3)
    good, bad, other = claim_due(engine, busy=(), limit=3)

    def fragile(engine, items, *, topic, **claiming):
        if len(items) > 1 or items[0].seq == bad.row.seq:
            raise RuntimeError("boom")
        return settle_and_claim(engine, items, topic=topic, **claiming)

    monkeypatch.setattr(settler_module, "settle_and_claim", fragile)

    async def run() -> list[Row | BaseException | None]:
        settler = Settler(engine, "receipts")
        items = [Settlement(c.row.seq or 0, c.token, DONE_OK) for c in (good, bad, other)]
        return await asyncio.gather(
            *(settler.submit(item) for item in items), return_exceptions=True
        )

    first, second, third = asyncio.run(run())
    assert isinstance(first, Row) and isinstance(third, Row)
    assert isinstance(second, RuntimeError)
    assert _rows(engine)[bad.row.id].state == IN_FLIGHT  # its lease decides, as after a crash
    assert _receipts(engine) == 2
