"""One flood, one action: which later messages a rule case's restriction covers (pure), and
how the batch's decisions record them on the case instead of opening new ones (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from services.common.contracts.events import parse_event
from services.moderation.cases import Decision, record_decisions
from services.moderation.decisions import BURST_SECONDS, restriction_of
from services.moderation.models import Case, CaseAction, ModerationOutbox
from services.moderation.rulebook import Rulebook
from services.moderation.specs import Context, PolicySpec, RuleSpec, Subject

AT = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)


def case(action: str | None, seconds: int | None = None, **fields: object) -> Case:
    values: dict[str, object] = {
        "id": "case_1", "group_id": "g", "member_id": "m", "event_type": "message.created",
        "action": action, "mute_seconds": seconds, "rule_ids": ["rule_1"], "occurred_at": AT,
    }  # fmt: skip
    return Case(**{**values, **fields})


def after(seconds: float) -> datetime:
    return AT + timedelta(seconds=seconds)


def test_a_mute_covers_the_next_minute_of_messages_judged_no_stronger() -> None:
    held = restriction_of(case("mute", 600))
    assert held is not None and held.action == "mute"
    assert held.covers(occurred_at=after(0), action="mute")
    assert held.covers(occurred_at=after(BURST_SECONDS - 1), action="warn")
    assert not held.covers(occurred_at=after(BURST_SECONDS), action="mute")  # a new burst
    assert not held.covers(occurred_at=after(-1), action="mute")  # sent before the case
    assert not held.covers(occurred_at=after(5), action="ban")  # stronger: acted on anyway


def test_a_short_mute_covers_only_its_own_length_and_removals_a_minute() -> None:
    short = restriction_of(case("mute", 20))
    assert short is not None and short.until == after(20)
    for removal in ("kick", "ban"):
        held = restriction_of(case(removal))
        assert held is not None and held.until == after(BURST_SECONDS)
        assert held.covers(occurred_at=after(10), action="mute")


def test_a_ladder_step_restricts_like_the_case_action() -> None:
    climbed = case("warn", escalation={"action": "mute", "mute_seconds": 600, "strikes": 2})
    held = restriction_of(climbed)
    assert held is not None and held.action == "mute"


@pytest.mark.parametrize(
    "unrestricting",
    [
        case("warn"),
        case("delete"),
        case("flag"),
        case("mute", 600, shadow=True),
        case("mute", 600, reversed=True),
        case("mute", 600, rule_ids=[]),  # a manual (or report) case: not a rule's burst
    ],
)
def test_only_enforced_unreversed_rule_restrictions_cover(unrestricting: Case) -> None:
    assert restriction_of(unrestricting) is None


@pytest.fixture
def engine() -> Iterator[Engine]:
    db = create_engine("sqlite://")
    tables = [Case.__table__, CaseAction.__table__, ModerationOutbox.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(db, tables=tables)
    yield db
    db.dispose()


def message(n: int, at: datetime) -> object:
    return parse_event(
        {"id": f"e{n}", "source": "tg", "type": "message.created", "group_id": "g",
         "member_id": "m", "occurred_at": at.isoformat(),
         "data": {"message_id": str(n), "text": f"第{n}条"}}
    )  # fmt: skip


def flood_decisions(count: int, *, delete_message: bool = True) -> list[Decision]:
    rule = RuleSpec.of(
        id="rule_flood", name="刷屏", kind="flood", params={"max_messages": 5, "seconds": 10},
        action="mute", mute_seconds=600, delete_message=delete_message,
    )  # fmt: skip
    rulebook = Rulebook([rule])
    decisions = []
    for n in range(1, count + 1):
        event = message(n, after(n * 0.5))
        subject = Subject.of(event)  # type: ignore[arg-type]
        assert subject is not None
        verdict = rulebook.evaluate(subject, Context(counts={"rule_flood": n}))
        if verdict:
            decisions.append(Decision(event, verdict, PolicySpec()))  # type: ignore[arg-type]
    return decisions


def test_a_flood_of_eight_is_one_mute_and_the_extra_messages_join_its_case(
    engine: Engine,
) -> None:
    decisions = flood_decisions(8)
    assert len(decisions) == 3  # messages 6, 7 and 8 exceed five in ten seconds
    with Session(engine) as session:
        created = record_decisions(session=session, decisions=decisions, topic="t")
        session.commit()
        [stored] = session.exec(select(Case)).all()
        rows = session.exec(select(ModerationOutbox).order_by(ModerationOutbox.seq)).all()
    assert [c.id for c in created] == [stored.id]
    assert stored.message_id == "6" and stored.burst_message_ids == ["7", "8"]
    assert stored.rule_names == ["刷屏"]
    assert [(r.payload["action"], r.payload["message_id"]) for r in rows] == [
        ("delete", "6"), ("mute", "6"), ("delete", "7"), ("delete", "8"),
    ]  # fmt: skip
    assert [r.payload["id"] for r in rows] == [
        f"{stored.id}-delete",
        stored.id,
        f"{stored.id}-delete-1",
        f"{stored.id}-delete-2",
    ]


def test_a_later_batch_and_its_replay_find_the_case_and_add_nothing_twice(engine: Engine) -> None:
    first, *rest = flood_decisions(8, delete_message=False)
    with Session(engine) as session:
        record_decisions(session=session, decisions=[first], topic="t")
        session.commit()
    for _ in range(2):  # the next poll, then its replay
        with Session(engine) as session:
            assert record_decisions(session=session, decisions=rest, topic="t") == []
            session.commit()
    with Session(engine) as session:
        [stored] = session.exec(select(Case)).all()
        actions = [r.payload["action"] for r in session.exec(select(ModerationOutbox))]
    assert stored.burst_message_ids == ["7", "8"]
    assert actions == ["mute"]  # delete_message: false keeps every message
