"""How campaigns read messages: check-in keywords by match mode, poll votes, feedback tags and
categories, and the params of polls, feedback and invites (422s name the field)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.campaigns.invites import reason_for
from services.campaigns.kinds import CampaignCreate
from services.campaigns.matching import (
    detect_category,
    find_tag,
    keyword_matches,
    mentions_keyword,
    parse_vote,
)
from services.campaigns.params import PollParams
from services.campaigns.polls import read_ballot
from services.campaigns.texts import details


@pytest.mark.parametrize(
    ("text", "exact", "prefix", "contains"),
    [
        ("打卡", True, True, True),
        ("打卡！", True, True, True),
        ("#打卡", True, True, True),
        ("＃打卡 ✅", True, True, True),
        ("  打卡 🎉🎉", True, True, True),
        ("打卡 第3天", False, True, True),
        ("每天记得#打卡 哦～", False, False, True),  # the owner's reminder
        ("我今天忘记打卡了", False, False, True),
        ("打", False, False, False),
        ("", False, False, False),
    ],
)
def test_checkin_keyword_by_match_mode(text: str, exact: bool, prefix: bool, contains: bool):
    assert keyword_matches("打卡", text, "exact") is exact
    assert keyword_matches("打卡", text, "prefix") is prefix
    assert keyword_matches("打卡", text, "contains") is contains


def test_a_keyword_of_symbols_alone_matches_on_the_clean_text():
    assert keyword_matches("✅", "✅")
    assert keyword_matches("✅", " ✅ ")
    assert not keyword_matches("✅", "✅ 好")
    assert keyword_matches("✅", "✅ 好", "prefix")
    assert not keyword_matches("✅", "👍", "contains")


def test_tags_keep_their_symbols():
    assert mentions_keyword("#反馈", "＃反馈 bug")
    assert not mentions_keyword("#反馈", "我有个反馈")


@pytest.mark.parametrize(
    ("text", "multiple", "votes"),
    [
        ("投票 2", False, [2]),
        ("投票２", False, [2]),  # full-width digit
        ("投票2", False, [2]),
        ("  投票：3 我选这个", False, [3]),
        ("投票 12", False, [12]),
        ("投票", False, []),
        ("投票结果呢", False, []),
        ("我投票 2", False, []),  # must start with the keyword
        ("投票 -1", False, []),
        ("投票 1 3", True, [1, 3]),
        ("投票 1,3,1", True, [1, 3]),
        ("投票 １、３", True, [1, 3]),
    ],
)
def test_parse_vote(text: str, multiple: bool, votes: list[int]):
    assert parse_vote("投票", text, multiple=multiple) == votes


def test_ballots_drop_out_of_range_options():
    params = PollParams(question="q", options=["A", "B", "C"])
    at = datetime(2026, 12, 1, tzinfo=UTC)

    def ballot(text: str, p: PollParams = params) -> Any:
        found = read_ballot(p, campaign_id="c", member_id="m", text=text, at=at, message_id="x")
        return None if found is None else list(found.options)

    assert ballot("投票 3") == [3]
    assert ballot("投票 4") is None
    assert ballot("投票 0") is None
    several = params.model_copy(update={"multiple": True})
    assert ballot("投票 1 4 2", several) == [1, 2]
    assert ballot("投票 9", several) is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("#反馈 bug 登录不了", "bug"),
        ("＃反馈 BUG：头像不显示", "bug"),
        ("#反馈 bugs everywhere", None),  # a Latin category ends at a word boundary
        ("#反馈建议加个夜间模式", "建议"),
        ("#反馈 【idea】 夜间模式", "idea"),
        ("#反馈 登录慢", None),
    ],
)
def test_category_detected_after_the_tag(text: str, category: str | None):
    after = find_tag("#反馈", text)
    assert after is not None
    assert detect_category(after, ["bug", "idea", "建议"]) == category


def test_no_tag_no_item():
    assert find_tag("#反馈", "反馈一下") is None


def test_invitee_reasons_fit_the_reason_column():
    assert reason_for("tg:42") == "invitee:tg:42"
    long = reason_for("x" * 256)
    assert len(long) <= 128 and long.startswith("invitee:sha256:")


def _errors(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        CampaignCreate.model_validate(body)
    return [e["loc"] for e in caught.value.errors()]


WINDOW = {"starts_at": "2026-12-01T09:00:00+08:00", "ends_at": "2026-12-08T09:00:00+08:00"}


def test_params_422s_name_the_field():
    poll = {"kind": "poll", "title": "t", **WINDOW}
    assert _errors({**poll, "params": {"question": "q", "options": ["A"]}}) == [
        ("params", "options")
    ]
    assert _errors({**poll, "params": {"question": "q", "options": ["A", "A"]}}) == [
        ("params", "options")
    ]
    assert _errors({**poll, "params": {"question": "", "options": ["A", "B"]}}) == [
        ("params", "question")
    ]
    invite = {"kind": "invite", "title": "t", **WINDOW}
    assert _errors({**invite, "params": {"points_per_invitee": -1}}) == [
        ("params", "points_per_invitee")
    ]
    assert _errors({**invite, "params": {"retain_days": -0.5}}) == [("params", "retain_days")]
    feedback = {"kind": "feedback", "title": "t", **WINDOW}
    assert _errors({**feedback, "params": {"points_accepted": -5}}) == [
        ("params", "points_accepted")
    ]
    assert _errors({**feedback, "params": {"categories": ["Bug", "bug"]}}) == [
        ("params", "categories")
    ]
    checkin = {"kind": "checkin", "title": "t", **WINDOW}
    assert _errors({**checkin, "params": {"match": "fuzzy"}}) == [("params", "match")]


def test_defaults_fill_in():
    body = CampaignCreate.model_validate({"kind": "invite", "title": "t", **WINDOW}).root
    assert body.params.model_dump(exclude={"texts"}) == {"points_per_invitee": 10, "retain_days": 7}
    body = CampaignCreate.model_validate({"kind": "checkin", "title": "t", **WINDOW}).root
    assert body.params.model_dump()["match"] == "exact"


def test_start_notices_tell_members_how_to_take_part():
    poll = PollParams(question="选哪个？", options=["A", "B"]).model_dump()
    assert details("poll", poll) == (
        "\n问题：选哪个？\n1. A\n2. B\n投票：发送“投票 编号”，如“投票 1”（以最后一次为准）"
    )
    assert details("poll", {**poll, "multiple": True}).endswith("（可多选）")
    feedback = {"tag": "#反馈", "categories": ["bug", "idea"]}
    assert details("feedback", feedback) == "\n分类：bug / idea\n参与：发送“#反馈 bug 内容”"
    assert details("invite", {"points_per_invitee": 10, "retain_days": 7}) == (
        "\n规则：邀请好友入群，好友留满 7 天，邀请人得 10 积分"
    )
    assert "留满 1 小时 30 分钟" in details(
        "invite", {"points_per_invitee": 1, "retain_days": 1.5 / 24}
    )
