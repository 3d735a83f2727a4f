"""The pure parts of membership: roster merging, codes, answer keywords, pacing, policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.common.contracts.events import parse_event
from services.moderation.cleanups import kicks_due
from services.moderation.join_requests import automatic_decision
from services.moderation.membership_models import CleanupCreate, JoinRequestPolicy
from services.moderation.models import PolicyPublic, PolicyUpdate
from services.moderation.roster import is_current, merge, silence_threshold
from services.moderation.verification import holds_code, new_code

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def event(kind: str, member: str, minutes: int, **data: object):
    if kind == "message.created":
        data = {"message_id": f"m{minutes}", **data}
    return parse_event(
        {
            "id": f"{kind}-{member}-{minutes}",
            "source": "s",
            "type": kind,
            "group_id": "g",
            "member_id": member,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "data": data,
        }
    )


def test_merge_keeps_first_and_latest_times_and_the_latest_name_whatever_the_order():
    events = [
        event("message.created", "a", 30, display_name="新"),
        event("member.joined", "a", 10, display_name="旧"),
        event("member.left", "a", 20),
        event("member.joined", "a", 25),
        event("message.created", "a", 5),
        event("member.updated", "b", 1, display_name="路人"),
    ]
    a, b = merge(events)
    assert (a.first_joined_at, a.last_joined_at) == (
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=25),
    )
    assert (a.last_left_at, a.last_active_at) == (
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=30),
    )
    assert (a.display_name, a.named_at) == ("新", T0 + timedelta(minutes=30))
    assert merge(reversed(events)) == [a, b]
    assert is_current(a)
    assert not is_current(b)  # a rename alone says nothing about membership


@pytest.mark.parametrize(
    ("events", "current"),
    [
        ([("member.joined", 1)], True),
        ([("member.joined", 1), ("member.left", 2)], False),
        ([("member.joined", 1), ("member.left", 2), ("member.joined", 3)], True),
        ([("message.created", 1)], True),  # joined before tracking began
        ([("member.left", 2), ("message.created", 3)], True),
        ([("member.left", 2)], False),
    ],
)
def test_a_current_member_has_no_leave_after_their_latest_join_or_message(events, current):
    [seen] = merge(event(kind, "m", minute) for kind, minute in events)
    assert is_current(seen) is current


def test_codes_are_four_digits_found_as_numbers_of_their_own():
    assert all(len(c) == 4 and c.isdigit() for c in (new_code() for _ in range(200)))
    assert holds_code("验证码 0427", "0427")
    assert holds_code("０４２７", "0427")  # full-width digits, NFKC
    assert holds_code("code:0427!", "0427")
    assert not holds_code("10427", "0427")
    assert not holds_code("04271", "0427")
    assert not holds_code("0428", "0427")


def test_auto_mode_matches_folded_keywords_manual_waits():
    auto = PolicyPublic(
        group_id="g", join_requests=JoinRequestPolicy(mode="auto", answer_keywords=["暗号", "VIP"])
    )
    assert automatic_decision(auto, "我知道暗號") is True  # traditional → simplified
    assert automatic_decision(auto, "v i p 会员") is True  # spacing, case
    assert automatic_decision(auto, "hello") is False
    assert automatic_decision(auto, "") is False
    anyone = PolicyPublic(group_id="g", join_requests=JoinRequestPolicy(mode="auto"))
    assert automatic_decision(anyone, "") is True
    assert automatic_decision(PolicyPublic(group_id="g"), "暗号") is None
    manual = PolicyPublic(group_id="g", join_requests=JoinRequestPolicy(answer_keywords=["暗号"]))
    assert automatic_decision(manual, "暗号") is None


def test_kicks_are_spaced_by_the_rate_and_a_pause_catches_up_a_second_at_most():
    start = T0
    assert kicks_due(next_kick_at=start, now=start, per_minute=600) == (1, start)
    assert kicks_due(next_kick_at=start, now=start + timedelta(seconds=0.55), per_minute=600) == (
        6,
        start,
    )
    assert kicks_due(next_kick_at=start, now=start - timedelta(seconds=1), per_minute=10)[0] == 0
    later = start + timedelta(minutes=10)
    count, base = kicks_due(next_kick_at=start, now=later, per_minute=60)
    assert (count, base) == (2, later - timedelta(seconds=1))


def test_the_silence_threshold_is_the_start_of_a_local_day():
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # already the 22nd in Shanghai
    assert silence_threshold(now, shanghai, 1) == datetime(2026, 11, 22, tzinfo=shanghai)
    assert silence_threshold(now, shanghai, 30) == datetime(2026, 10, 24, tzinfo=shanghai)
    assert silence_threshold(now, ZoneInfo("UTC"), 1) == datetime(2026, 11, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"verification": {"within_seconds": 9}}, ("verification", "within_seconds")),
        ({"verification": {"on_fail": "mute"}}, ("verification", "on_fail")),
        ({"join_requests": {"mode": "sometimes"}}, ("join_requests", "mode")),
        ({"join_requests": {"answer_keywords": [""]}}, ("join_requests", "answer_keywords", 0)),
        ({"blocklists": ["a/b"]}, ("blocklists", 0)),
        ({"share_bans_to": ""}, ("share_bans_to",)),
    ],
)
def test_bad_policy_parts_name_their_field(body, field):
    with pytest.raises(ValidationError) as caught:
        PolicyUpdate.model_validate(body)
    assert caught.value.errors()[0]["loc"] == field


def test_cleanup_bounds():
    assert CleanupCreate().model_dump() == {
        "inactive_days": 30,
        "never_spoke_only": False,
        "per_minute": 10,
    }
    for bad in ({"inactive_days": 0}, {"inactive_days": 401}, {"per_minute": 0}, {"x": 1}):
        with pytest.raises(ValidationError):
            CleanupCreate.model_validate(bad)
