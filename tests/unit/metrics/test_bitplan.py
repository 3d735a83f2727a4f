"""A query's bitmap program and period arithmetic, built without running them."""

from __future__ import annotations

import redis

from services.metrics import bitplan
from services.metrics.bitplan import BitPlan
from services.metrics.cohorts import Periods
from services.metrics.keys import GroupKeys, week_start

KEYS = GroupKeys("g")


def plan() -> BitPlan:
    # A client that is never connected: registering a script only hashes it.
    return BitPlan(redis.Redis(host="127.0.0.1", port=9), KEYS)


def test_counts_unions_and_ands_become_numbered_operations():
    p = plan()
    a, b = KEYS.active(1), KEYS.active(2)
    assert p.union([a]) == a  # a single source needs no scratch key
    both = p.union([a, b])
    assert p.count(both) == 0
    assert p.count_and(a, b) == 1  # the first AND builds its scratch key
    assert p.count_and(b, a) == 2  # later ones reuse it (X)
    [[ttl, program, *names]] = p.calls()
    assert ttl == bitplan.SCRATCH_TTL_SECONDS
    scratch = [n for n in names if ":tmp:" in n]
    assert len(scratch) == 2
    index = {name: str(i) for i, name in enumerate(names, 1)}
    s0, s1, ka, kb = index[scratch[0]], index[scratch[1]], index[a], index[b]
    assert program.split("\n") == [
        f"OR {s0} {ka} {kb}",
        f"E {s0}",
        f"C {s0}",
        f"AND {s1} {ka} {kb}",
        f"E {s1}",
        f"C {s1}",
        f"X {s1} {kb} {ka}",
        f"D {s0} {s1}",
    ]


def test_long_programs_are_split_into_chunks():
    p = plan()
    for day in range(bitplan.OPS_PER_CALL + 5):
        p.count(KEYS.active(day))
    calls = p.calls()
    assert [len(c[1].split("\n")) for c in calls] == [bitplan.OPS_PER_CALL, 5]
    assert calls[0][2:] == calls[1][2:]  # every chunk gets the whole key table


def test_periods_cover_days_or_iso_weeks():
    days, weeks = Periods(KEYS, plan(), "day"), Periods(KEYS, plan(), "week")
    assert list(days.starts(10, 12)) == [10, 11, 12]
    assert days.days(10) == [10]
    saturday = 20_413  # 2025-11-22
    monday = week_start(saturday)
    assert weeks.start_of(saturday) == monday
    assert list(weeks.starts(monday - 1, saturday)) == [monday - 7, monday]
    assert weeks.days(monday) == list(range(monday, monday + 7))
