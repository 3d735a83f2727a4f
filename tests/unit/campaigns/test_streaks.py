"""Check-in arithmetic with no server: streak lengths with grace days, keyword matching."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.campaigns.participation import Tally, mentions_keyword, streak_through

D = date(2026, 3, 1)


def days(*offsets: int) -> list[date]:
    return [D + timedelta(n) for n in offsets]


def test_streak_rules():
    history = days(0, 1, 3, 7)
    assert streak_through(history, D + timedelta(1), 0) == 2
    assert streak_through(history, D + timedelta(3), 1) == 3
    assert streak_through(history, D + timedelta(7), 1) == 1
    assert streak_through(history, D + timedelta(7), 3) == 4


@pytest.mark.parametrize(
    ("history", "day", "grace", "length"),
    [
        (days(0), 0, 0, 1),
        (days(0, 1, 2, 3, 4), 2, 0, 5),
        (days(0, 2), 2, 0, 1),  # one missed day breaks a streak without grace
        (days(0, 2), 2, 1, 2),  # and not with one grace day; missed days do not count
        (days(0, 3), 3, 1, 1),  # two missed days break it with one grace day
        (days(4, 0, 1, 1, 2), 4, 1, 4),  # unordered, duplicated, late check-ins
        (days(0, 1), 5, 0, 0),  # a day not in the history is in no run
    ],
)
def test_streak_through(history: list[date], day: int, grace: int, length: int):
    assert streak_through(history, D + timedelta(day), grace) == length


def test_streak_of_empty_history_is_zero():
    assert streak_through([], D, 3) == 0


@pytest.mark.parametrize(
    ("keyword", "text", "found"),
    [
        ("打卡", "今天打卡啦", True),
        ("打卡", "＃打卡", True),
        ("#打卡", "＃打卡", True),  # full-width forms fold to half-width
        ("Check", "daily CHECK-in", True),  # case folds
        ("打卡", "打 卡", False),
        ("抽奖", "", False),
    ],
)
def test_mentions_keyword(keyword: str, text: str, found: bool):
    assert mentions_keyword(keyword, text) is found


def test_tally_keeps_the_earliest_time_and_any_entry():
    tally = Tally()
    late, early = D + timedelta(2), D
    tally.add(late, entered=False)  # type: ignore[arg-type]
    tally.add(early, entered=True)  # type: ignore[arg-type]
    tally.add(late, entered=False)  # type: ignore[arg-type]
    assert (tally.count, tally.first_at, tally.entered) == (3, early, True)
