"""The roster's upsert against a database: each column moves one way only, over polls.

Two polls write the same members; the second's values are older or newer than what is
stored, and NULLs where a poll said nothing. On SQLite and on the suite's database
(PostgreSQL, where the rows go as one JSON parameter).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from services.moderation.membership_models import MemberRecord
from services.moderation.roster import record
from tests.moderation.conftest import member_event, message

T0 = datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "suite"])
def roster_engine(request: pytest.FixtureRequest, engine_with_tables: Any) -> Engine:
    engine: Engine = engine_with_tables(request.param, [MemberRecord.__table__])  # type: ignore[attr-defined]
    return engine


def _poll(engine: Engine, events: list[Any]) -> int:
    with Session(engine) as session:
        written = record(session, events)
        session.commit()
    return written


def _roster(engine: Engine) -> dict[str, MemberRecord]:
    with Session(engine) as session:
        return {r.member_id: r for r in session.exec(select(MemberRecord)).all()}


def test_each_column_moves_one_way_over_polls(roster_engine: Engine) -> None:
    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    g = "grp:roster"
    first = [
        member_event("member.joined", g, "a", at=at(10), display_name="阿"),
        message(g, "a", "早", at=at(20)),
        member_event("member.joined", g, "b", at=at(10)),
        member_event("member.left", g, "b", at=at(30)),
        member_event("member.updated", g, "c", at=at(5), display_name="老名字"),
    ]
    assert _poll(roster_engine, first) == 3
    second = [  # a: an earlier join (a late event), a rename, an older message; b: back
        member_event("member.joined", g, "a", at=at(1)),
        member_event("member.updated", g, "a", at=at(40), display_name="阿新"),
        message(g, "a", "旧", at=at(15)),
        member_event("member.joined", g, "b", at=at(50)),
        member_event("member.updated", g, "c", at=at(2), display_name="更旧的名字"),
        message(g, "d", "新人", at=at(60), display_name="丁"),
    ]
    assert _poll(roster_engine, second) == 4
    assert _poll(roster_engine, first) == 3  # a replay of the first poll changes nothing

    roster = _roster(roster_engine)
    a, b, c, d = (roster[m] for m in "abcd")
    assert (a.first_joined_at, a.last_joined_at, a.last_active_at) == (at(1), at(10), at(20))
    assert (a.display_name, a.named_at, a.last_left_at) == ("阿新", at(40), None)
    assert (b.first_joined_at, b.last_joined_at, b.last_left_at) == (at(10), at(50), at(30))
    assert (b.display_name, b.named_at, b.last_active_at) == (None, None, None)
    assert (c.display_name, c.named_at, c.first_joined_at) == ("老名字", at(5), None)
    assert (d.display_name, d.last_active_at, d.first_joined_at) == ("丁", at(60), None)
