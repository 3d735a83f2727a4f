"""Posts fit for a real group, with no server: templates and their placeholders, members
named and mentioned, times in the group's timezone with the zone shown, welcome batches,
auto-reply triggers; migration 0004 up and down on a throwaway SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from services.campaigns.app import MIGRATIONS, VERSION_TABLE
from services.campaigns.autoreply import triggered
from services.campaigns.kinds import CampaignCreate
from services.campaigns.texts import (
    Named,
    chinese_duration,
    details,
    local_time,
    placeholders,
    render,
    template_for,
)
from services.campaigns.welcome import Join, batch_id, due_batches
from services.common.db import make_engine
from services.common.text import fold

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
SHANGHAI = ZoneInfo("Asia/Shanghai")
WINDOW = {"title": "t", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-02T09:00:00Z"}


def test_times_are_local_with_the_zone_shown():
    assert local_time(T0, SHANGHAI) == "2026-12-01 09:00 (Asia/Shanghai, UTC+8)"
    assert local_time(T0, ZoneInfo("UTC")) == "2026-12-01 01:00 (UTC)"
    assert local_time(T0, ZoneInfo("Asia/Kolkata")) == "2026-12-01 06:30 (Asia/Kolkata, UTC+5:30)"
    # The offset of the day shown, daylight saving included.
    july = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert local_time(july, ZoneInfo("America/New_York")) == (
        "2026-07-01 08:00 (America/New_York, UTC-4)"
    )
    assert local_time(T0, ZoneInfo("America/New_York")) == (
        "2026-11-30 20:00 (America/New_York, UTC-5)"
    )


def test_durations_read_in_chinese():
    assert chinese_duration(3600) == "1 小时"
    assert chinese_duration(5400) == "1 小时 30 分钟"
    assert chinese_duration(86400 + 60) == "1 天 1 分钟"
    assert chinese_duration(0) == "0 秒"


def test_an_event_names_its_place_link_and_attendance_keyword():
    params = {"location": "线上", "url": "https://m.example.com/j/1", "attendance_keyword": "签到"}
    assert details("event", params) == (
        "\n地点：线上\n链接：https://m.example.com/j/1\n签到：发送“签到”"
    )
    assert details("event", {"location": None, "url": None}) == ""
    assert details("checkin", {"keyword": "打卡"}) == "\n参与：发送“打卡”打卡"
    assert details("lottery", {"entry_keyword": None}) == "\n参与：活动期间在群里发言即可"


def test_members_are_named_by_display_name_and_mentioned_once_each():
    names = {"telegram:1": "小明", "telegram:2": "Anna"}

    def members(named: Named) -> str:
        return " ".join(named.label(m) for m in ["telegram:1", "telegram:3", "telegram:2"])

    post = render("欢迎 {members} 加入！共 {count} 位", {"members": members, "count": 3}, names)
    assert post is not None
    assert post.text == "欢迎 @小明 @群友 @Anna 加入！共 3 位"
    assert "telegram:" not in post.text
    assert post.mentions == ["telegram:1", "telegram:3", "telegram:2"]
    assert post.mention_names == {"telegram:1": "小明", "telegram:3": "群友", "telegram:2": "Anna"}
    # A template that leaves the members out mentions nobody.
    quiet = render("欢迎新朋友！", {"members": members, "count": 3}, names)
    assert quiet is not None and quiet.mentions == [] and quiet.mention_names == {}
    assert render("", {"members": members}, names) is None


def test_overrides_replace_defaults_and_quiet_kinds_post_no_start_or_end():
    assert template_for("event", "announce", {"announce": "x {title}"}) == "x {title}"
    assert template_for("event", "ended", {"ended": ""}) == ""
    assert template_for("event", "ended", {"ended": None}).startswith("【结束】")
    assert template_for("welcome", "started", {}) == ""
    assert template_for("broadcast", "ended", None) == ""
    assert template_for("broadcast", "started", {"started": "开始了"}) == "开始了"


def test_unknown_placeholders_are_named():
    assert placeholders("{title} {before}", ["title", "before"]) == ["title", "before"]
    with pytest.raises(ValueError, match=r"unknown placeholder \{name\}"):
        placeholders("hi {name}", ["member"])
    with pytest.raises(ValueError, match="not a valid template"):
        placeholders("hi {member", ["member"])
    with pytest.raises(ValueError, match=r"unknown placeholder \{member!r\}"):
        placeholders("hi {member!r}", ["member"])


@pytest.mark.parametrize(
    ("kind", "params", "loc"),
    [
        ("welcome", {"text": "欢迎 {newbies}"}, ("params", "text")),
        ("welcome", {"batch_seconds": 0}, ("params", "batch_seconds")),
        ("event", {"texts": {"announce": "{title} {where}"}}, ("params", "texts", "announce")),
        ("event", {"texts": {"winners": "{winners}"}}, ("params", "texts", "winners")),
        ("lottery", {"prizes": [{"name": "x", "quantity": 1}], "texts": {"winners": "{who}"}},
         ("params", "texts", "winners")),
        ("autoreply", {"triggers": [{"keywords": ["群规"], "reply": "{user}"}]},
         ("params", "triggers", 0, "reply")),
        ("autoreply", {"triggers": [{"keywords": ["？！"], "reply": "hi"}]},
         ("params", "triggers", 0, "keywords", 0)),
        ("autoreply", {"triggers": []}, ("params", "triggers")),
        ("autoreply", {"triggers": [{"keywords": ["a"], "reply": "b"}], "cooldown_seconds": 0},
         ("params", "cooldown_seconds")),
        ("broadcast", {"messages": []}, ("params", "messages")),
        ("broadcast", {"messages": [{"at": "2026-12-01T10:00:00", "text": "x"}]},
         ("params", "messages", 0, "at")),
    ],
)  # fmt: skip
def test_bad_params_name_the_field(kind: str, params: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as caught:
        CampaignCreate.model_validate({**WINDOW, "kind": kind, "params": params})
    assert loc in [tuple(e["loc"]) for e in caught.value.errors()]


def _joins(*spec: tuple[str, float, float | None]) -> list[Join]:
    return [
        Join(m, T0 + timedelta(seconds=at), None if left is None else T0 + timedelta(seconds=left))
        for m, at, left in spec
    ]


def test_joins_within_the_batch_of_the_first_join_are_one_batch():
    wave = _joins(*((f"m{i:02d}", i * 0.1, None) for i in range(50)))
    [batch] = due_batches(wave, timedelta(seconds=60), T0 + timedelta(seconds=60))
    assert batch.opened_at == T0
    assert batch.greeted == [f"m{i:02d}" for i in range(50)]
    # Not due before the first join's batch time has passed.
    assert due_batches(wave, timedelta(seconds=60), T0 + timedelta(seconds=59.9)) == []


def test_a_join_after_the_batch_opens_the_next_one():
    joins = _joins(("a", 0, None), ("b", 59, None), ("c", 60, None), ("d", 100, None))
    first, second = due_batches(joins, timedelta(seconds=60), T0 + timedelta(seconds=120))
    assert first.greeted == ["a", "b"]
    assert (second.opened_at, second.greeted) == (T0 + timedelta(seconds=60), ["c", "d"])
    # Only the batches already due: the second closes at 120 s.
    [only] = due_batches(joins, timedelta(seconds=60), T0 + timedelta(seconds=119))
    assert only.greeted == ["a", "b"]


def test_leavers_are_not_greeted_but_a_rejoin_is_once():
    joins = _joins(("a", 0, 5), ("b", 1, None), ("a", 10, None), ("c", 2, 3), ("b", 4, None))
    [batch] = due_batches(joins, timedelta(seconds=30), T0 + timedelta(seconds=30))
    assert batch.greeted == ["b", "a"]
    assert len(batch.joins) == 5  # every join settled, the leaver's too
    [gone] = due_batches(_joins(("c", 0, 1)), timedelta(seconds=5), T0 + timedelta(seconds=5))
    assert gone.greeted == []


def test_batch_ids_tell_batches_apart():
    a, b = _joins(("a", 0, None), ("b", 0, None))
    assert batch_id("c1", a) != batch_id("c1", b)
    assert batch_id("c1", a).startswith(str(int(T0.timestamp() * 1000)))


def test_triggers_match_like_moderation_keywords():
    keywords = [[fold("群规")], [fold("报名"), fold("怎么参加")]]
    assert triggered(keywords, "请问群规是什么？") == [0]
    assert triggered(keywords, "請問 群 規 在哪") == [0]  # traditional, spaced out
    assert triggered(keywords, "怎么 参加？群规？") == [0, 1]
    assert triggered(keywords, "ＡＢＣ 你好") == []
    assert triggered([[fold("FAQ")]], "where is the faq") == [0]


def test_migration_0004_adds_and_drops_its_tables_and_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    cfg.attributes["version_table"] = VERSION_TABLE
    engine = make_engine(url)

    def shape() -> tuple[set[str], set[str]]:
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("campaigns_campaign")}
        return set(inspector.get_table_names()), columns

    command.upgrade(cfg, "0004")
    tables, columns = shape()
    assert {"campaigns_welcome_join", "campaigns_reply_cooldown"} <= tables
    assert "broadcasts_sent" in columns
    command.downgrade(cfg, "0003")
    tables, columns = shape()
    assert not {"campaigns_welcome_join", "campaigns_reply_cooldown"} & tables
    assert "broadcasts_sent" not in columns
    engine.dispose()
