"""Notice templates: placeholders checked, Chinese durations, mentions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.moderation.notices import (
    DEFAULT_VERIFY,
    NoticeFacts,
    Notices,
    chinese_duration,
    notice_for,
    render,
    template_for,
)

FACTS = NoticeFacts(
    member_id="telegram:42", display_name="小明", reason="广告", strikes=2, duration_seconds=600
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (600, "10 分钟"),
        (7200, "2 小时"),
        (86400, "1 天"),
        (5400, "1 小时 30 分钟"),
        (45, "45 秒"),
        (90061, "1 天 1 小时 1 分钟 1 秒"),
        (None, "永久"),
    ],
)
def test_durations_read_as_chinese(seconds: int | None, text: str) -> None:
    assert chinese_duration(seconds) == text


def test_every_placeholder_is_filled_and_the_member_mentioned() -> None:
    template = "{member} 违反群规：{reason}（第 {strikes} 次），禁言 {duration}{code}"
    notice = render(template, FACTS)
    assert notice is not None
    assert notice.text == "@小明 违反群规：广告（第 2 次），禁言 10 分钟"
    assert notice.mentions == ("telegram:42",)
    assert notice.mention_names == {"telegram:42": "小明"}


def test_no_name_mentions_the_member_id_and_no_member_no_mention() -> None:
    nameless = NoticeFacts("telegram:42", None, "刷屏", 1, None)
    notice = render("{member} 已被移出", nameless)
    assert notice is not None and notice.text == "@telegram:42 已被移出"
    assert notice.mention_names == {}  # delivery looks for `@<member id>`
    unnamed = render("有人违反了 {reason}", FACTS)
    assert unnamed is not None and unnamed.mentions == () and unnamed.mention_names == {}


def test_absent_or_empty_templates_post_nothing_except_verify() -> None:
    assert render(template_for({}, "warn"), FACTS) is None
    assert render(template_for({"warn": ""}, "warn"), FACTS) is None
    assert template_for({}, "verify") == DEFAULT_VERIFY
    assert template_for({"verify": "{member} 输入 {code}"}, "verify") == "{member} 输入 {code}"


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{member} {name}", "{name}"),
        ("{}", "{}"),
        ("{member!r}", "{member!r}"),
        ("{strikes:>3}", "{strikes:>3}"),
        ("{member.id}", "{member.id}"),
    ],
)
def test_unknown_placeholders_are_refused_by_name(template: str, named: str) -> None:
    with pytest.raises(ValidationError) as info:
        Notices(warn=template)
    assert named in str(info.value)


def test_stray_braces_are_refused_and_doubled_braces_kept() -> None:
    with pytest.raises(ValidationError):
        Notices(mute="{member")
    notices = Notices(kick="{{群规}} {member}")
    assert render(notices.kick, FACTS).text == "{群规} @小明"  # type: ignore[union-attr]


def test_notice_for_renders_the_policy_template_and_the_verify_default_with_its_code() -> None:
    facts = NoticeFacts("telegram:42", "小明", "入群验证", 0, 300, code="4711")
    verify = notice_for({}, "verify", facts)
    assert verify is not None and "4711" in verify.text and "@小明" in verify.text
    assert verify.text == DEFAULT_VERIFY.format(member="@小明", code="4711")
    own = notice_for({"verify": "{member} 请在 {duration} 内发送 {code}"}, "verify", facts)
    assert own is not None and own.text == "@小明 请在 5 分钟 内发送 4711"
    assert notice_for({"mute": "{member} 被禁言 {duration}"}, "kick", facts) is None
