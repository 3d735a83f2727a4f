"""Key names and the day-number calendar the Lua scripts count with."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from services.metrics.keys import (
    GroupKeys,
    day_number,
    day_of_number,
    group_prefix,
    local_day,
    start_of_day_ms,
    today,
    week_start,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_group_id_is_the_whole_hash_tag_whatever_it_holds():
    assert group_prefix("slack:T1:C2") == "qy:{slack:T1:C2}:"
    assert group_prefix("a{b}%c") == "qy:{a%7Bb%7D%25c}:"
    keys = GroupKeys("g")
    assert [keys.day(3), keys.active(3), keys.counts(3), keys.cohort(3), keys.minutes(9)] == [
        "qy:{g}:d:3",
        "qy:{g}:a:3",
        "qy:{g}:c:3",
        "qy:{g}:co:3",
        "qy:{g}:mh:9",
    ]
    assert keys.ids == "qy:{g}:ids" and keys.members == "qy:{g}:mem"


def test_day_numbers_count_local_days_since_1970():
    assert day_number(date(1970, 1, 1)) == 0
    assert day_of_number(day_number(date(2026, 11, 21))) == date(2026, 11, 21)
    late_utc = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 01:30 on the 21st in Shanghai
    assert local_day(late_utc, SHANGHAI) == day_number(date(2026, 11, 21))
    assert local_day(late_utc, ZoneInfo("UTC")) == day_number(date(2026, 11, 20))
    assert today(SHANGHAI, late_utc) == day_number(date(2026, 11, 21))


def test_weeks_start_on_monday_and_days_at_local_midnight():
    saturday = day_number(date(2026, 11, 21))
    assert day_of_number(week_start(saturday)) == date(2026, 11, 16)
    assert week_start(week_start(saturday)) == week_start(saturday)
    midnight = datetime(2026, 11, 21, tzinfo=SHANGHAI)
    assert start_of_day_ms(saturday, SHANGHAI) == int(midnight.timestamp() * 1000)
