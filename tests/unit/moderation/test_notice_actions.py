"""A case's action keeps what its notice says: the text, the member mentioned and the
display name the text names them by (`mention_names`), in its row and its outbox record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from services.common.contracts.actions import ModerationAction
from services.moderation.decisions import Grounds, new_action, queue_actions
from services.moderation.models import Case, CaseAction, ModerationOutbox
from services.moderation.specs import PolicySpec

AT = datetime(2026, 12, 15, 8, 0, tzinfo=UTC)
POLICY = PolicySpec(notices={"mute": "{member} 因 {reason} 被禁言 {duration}", "kick": "违规"})
CASE = Case(
    id="case_1",
    group_id="telegram:-100",
    member_id="telegram:42",
    event_source="tg",
    event_id="e1",
    event_type="message",
    message_id="4711",
    action="mute",
    mute_seconds=600,
    occurred_at=AT,
    created_at=AT,
)


def _action(action: str, display_name: str | None) -> CaseAction:
    grounds = Grounds(
        reason="keywords: 加微信", label="广告", rule_id="rule_1", source="tg",
        display_name=display_name, message_at=AT,
    )  # fmt: skip
    return new_action(
        CASE, grounds, id=CASE.id, action=action, duration=600, reason=grounds.reason,
        strikes=1, policy=POLICY,
    )  # fmt: skip


@pytest.fixture
def engine() -> Iterator[Engine]:
    db = create_engine("sqlite://")
    tables = [CaseAction.__table__, ModerationOutbox.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(db, tables=tables)
    yield db
    db.dispose()


def test_a_named_member_is_published_with_the_name_the_notice_uses(engine: Engine) -> None:
    action = _action("mute", "小明")
    assert action.text == "@小明 因 广告 被禁言 10 分钟"
    assert action.mentions == ["telegram:42"]
    assert action.mention_names == {"telegram:42": "小明"}
    with Session(engine) as session:
        queue_actions(session, [action], "moderation.actions.v1")
        session.commit()
        [row] = session.exec(select(ModerationOutbox)).all()
        stored = session.get(CaseAction, CASE.id)
    assert stored is not None and stored.mention_names == {"telegram:42": "小明"}
    assert row.payload["mention_names"] == {"telegram:42": "小明"}
    assert row.payload["text"] == "@小明 因 广告 被禁言 10 分钟"
    assert ModerationAction.model_validate(row.payload).mention_names == {"telegram:42": "小明"}


def test_no_name_or_no_member_placeholder_publishes_no_names() -> None:
    nameless = _action("mute", None)
    assert nameless.text == "@telegram:42 因 广告 被禁言 10 分钟"
    assert nameless.mentions == ["telegram:42"] and nameless.mention_names == {}
    unnamed = _action("kick", "小明")  # the template does not name the member
    assert unnamed.mentions == [] and unnamed.contract().mention_names == {}
    silent = _action("warn", "小明")  # no template: nothing posted
    assert silent.text is None and silent.contract().model_dump()["mention_names"] == {}
