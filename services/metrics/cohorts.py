"""Cohort retention and lifecycle, computed with bitmap algebra inside Redis.

A period is a day or an ISO week (named by its Monday). The active set of a
period is the OR of its daily activity bitmaps; a cohort is the OR of the
first-join bitmaps of its days. Counts are BITCOUNTs of ANDs of those sets.
"""

from __future__ import annotations

import redis

from services.metrics.bitplan import BitPlan
from services.metrics.keys import GroupKeys, day_of_number, week_start
from services.metrics.models import (
    Cohort,
    CohortKind,
    LifecyclePeriod,
    RetentionMode,
    RetentionPeriod,
)


class Periods:
    """Days or weeks of one group, with their active and cohort sets built on demand."""

    def __init__(
        self, keys: GroupKeys, plan: BitPlan, kind: CohortKind, mask: str | None = None
    ) -> None:
        self.keys = keys
        self.mask = mask
        self.plan = plan
        self.length = 1 if kind == "day" else 7
        self._active: dict[int, str] = {}
        self._joined: dict[int, str] = {}

    def start_of(self, day: int) -> int:
        """Return the first day of the period holding the day."""
        return day if self.length == 1 else week_start(day)

    def starts(self, first_day: int, last_day: int) -> range:
        """Return the first days of the periods covering first_day..last_day."""
        return range(self.start_of(first_day), self.start_of(last_day) + 1, self.length)

    def days(self, start: int) -> list[int]:
        """Return the days of the period starting on `start`."""
        return list(range(start, start + self.length))

    def active(self, start: int) -> str:
        """Return the key of the members active in the period."""
        if start not in self._active:
            days = [self.keys.active(d) for d in self.days(start)]
            self._active[start] = self.plan.padded_union(days)
        return self._active[start]

    def joined(self, start: int) -> str:
        """Return the key of the members whose first join falls in the period."""
        if start not in self._joined:
            days = [self.keys.cohort(d) for d in self.days(start)]
            self._joined[start] = self.plan.padded_union(days)
            if self.mask is not None:
                self.plan.restrict(self._joined[start], self.mask)
        return self._joined[start]

    def started(self, start: int) -> str:
        """Return the key of the members new in the period: first joined in it, or never seen
        joining and first active in it."""
        days = self.days(start)
        keys = [self.keys.cohort(d) for d in days] + [self.keys.first_seen(d) for d in days]
        return self.plan.padded_union(keys)


def read_retention(
    client: redis.Redis,
    *,
    group_id: str,
    kind: CohortKind,
    mode: RetentionMode,
    first_day: int,
    last_day: int,
    periods: int,
    today: int,
    mask: str | None = None,
) -> list[Cohort]:
    """Return each cohort's size and how many of it were active k periods after joining.

    `mask` names a bitmap key the cohorts are restricted to (the members of a channel).
    """
    keys = GroupKeys(group_id)
    plan = BitPlan(client, keys)
    p = Periods(keys, plan, kind, mask)
    cohorts = list(p.starts(first_day, last_day))
    current = p.start_of(today)
    sizes = [plan.count(p.joined(start)) for start in cohorts]
    slots: dict[tuple[int, int], int] = {}
    if mode == "exact":
        for i, start in enumerate(cohorts):
            for k in range(1, periods + 1):
                target = start + k * p.length
                if target <= current:
                    slots[i, k] = plan.count_and(p.joined(start), p.active(target))
    else:
        # Walk back from the newest period, OR-ing each period into "active then or later".
        newest = min(cohorts[-1] + periods * p.length, current)
        oldest = cohorts[0] + p.length
        if newest >= oldest:
            later = plan.padded_union([keys.active(d) for d in range(newest, today + 1)])
            for target in range(newest, oldest - 1, -p.length):
                if target < newest:
                    plan.accumulate(later, [keys.active(d) for d in p.days(target)])
                for k in range(1, periods + 1):
                    i = (target - k * p.length - cohorts[0]) // p.length
                    if 0 <= i < len(cohorts):
                        slots[i, k] = plan.count_and(p.joined(cohorts[i]), later)
    plan.run()
    result = []
    for i, start in enumerate(cohorts):
        size = plan.result(sizes[i])
        rows = []
        for k in range(1, periods + 1):
            if (i, k) in slots:
                count = plan.result(slots[i, k])
                rows.append(
                    RetentionPeriod(
                        period=k, count=count, rate=round(count / size, 4) if size else 0.0
                    )
                )
            else:
                rows.append(RetentionPeriod(period=k, count=None, rate=None))
        result.append(Cohort(cohort=day_of_number(start), size=size, periods=rows))
    return result


def read_lifecycle(
    client: redis.Redis, *, group_id: str, kind: CohortKind, first_day: int, last_day: int
) -> list[LifecyclePeriod]:
    """Split each period's active members into new, returning and resurrecting; count dormant.

    New = first joined in the period, or (never seen joining) first active in it.
    """
    keys = GroupKeys(group_id)
    plan = BitPlan(client, keys)
    p = Periods(keys, plan, kind)
    starts = list(p.starts(first_day, last_day))
    slots = []
    for start in starts:
        now, before, joined = p.active(start), p.active(start - p.length), p.started(start)
        slots.append(
            (
                plan.count(now),
                plan.count(before),
                plan.count_and(now, joined),
                plan.count_and(now, before),
                plan.count_and(now, before, joined),
            )
        )
    plan.run()
    result = []
    for start, queued in zip(starts, slots, strict=True):
        active, previous, new, both, both_new = (plan.result(s) for s in queued)
        returning = both - both_new
        result.append(
            LifecyclePeriod(
                period=day_of_number(start),
                active=active,
                new=new,
                returning=returning,
                resurrecting=active - new - returning,
                dormant=previous - both,
            )
        )
    return result
