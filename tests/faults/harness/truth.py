"""The ground truth: what the services must report, computed in plain Python from the
contract's definitions and the events ingest acknowledged (never a service's own code)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.faults.harness.scale import AD_KEYWORDS, CHECKIN_KEYWORD, STREAK_DAYS


def folded(text: str) -> str:
    """NFKC, case-folded, without whitespace: how keyword rules see a message."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def unique_events(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the events once each by (source, id), first copy wins."""
    seen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for e in events:
        seen.setdefault((e["source"], e["id"]), e)
    return list(seen.values())


def _local_day(event: Mapping[str, Any], tz: ZoneInfo) -> date:
    return datetime.fromisoformat(event["occurred_at"]).astimezone(tz).date()


Cell = tuple[str, str, str]  # (group, day or member, field)


@dataclass
class Truth:
    """What the services must report, computed from the acknowledged events."""

    events: int
    cells: dict[Cell, int]  # activity and per-member message counts
    offending: dict[str, str]  # event id -> group id: messages the ad rule catches
    checkins: set[tuple[str, str, date]]  # (group, member, local day)
    streaks: set[tuple[str, str]]  # (group, member) with STREAK_DAYS consecutive check-ins
    groups: list[str]
    days: list[date]


# docs/metrics.md: a message moderation deletes stops counting while it can still be found
# by its id, until the end of its local day plus this many days (moderation deletes within
# seconds, so what decides is how old the message's day is when it is sent).
DELETION_FINDABLE_DAYS = 3


def _deleted_in_metrics(e: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> bool:
    day = _local_day(e, tz)
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return day_end + timedelta(days=DELETION_FINDABLE_DAYS) > now


def ground_truth(
    events: Iterable[Mapping[str, Any]], *, tz: ZoneInfo, now: datetime | None = None
) -> Truth:
    """Compute per group and local day messages, active members, joins and leaves, per
    member message counts, the offending messages and the expected check-in grants.

    Offending messages are deleted by the ad rule, so metrics leaves them out of activity
    (docs/metrics.md), except those whose day is too old to find them by id."""
    now = now or datetime.now(tz)
    unique = unique_events(events)
    messages: Counter[tuple[str, date]] = Counter()
    active: dict[tuple[str, date], set[str]] = defaultdict(set)
    joins: Counter[tuple[str, date]] = Counter()
    leaves: Counter[tuple[str, date]] = Counter()
    per_member: Counter[tuple[str, str]] = Counter()
    offending: dict[str, str] = {}
    checkins: set[tuple[str, str, date]] = set()
    for e in unique:
        group, member, day = e["group_id"], e["member_id"], _local_day(e, tz)
        if e["type"] == "message.created":
            text = folded(e["data"].get("text") or "")
            ad = any(k in text for k in AD_KEYWORDS)
            if ad:
                offending[e["id"]] = group
            if CHECKIN_KEYWORD in text:
                checkins.add((group, member, day))
            if ad and _deleted_in_metrics(e, tz, now):
                continue
            messages[group, day] += 1
            active[group, day].add(member)
            per_member[group, member] += 1
        elif e["type"] == "member.joined":
            joins[group, day] += 1
        elif e["type"] == "member.left":
            leaves[group, day] += 1
    keys = set(messages) | set(joins) | set(leaves)
    cells: dict[Cell, int] = {}
    for group, day in keys:
        d = day.isoformat()
        cells[group, d, "messages"] = messages[group, day]
        cells[group, d, "active_members"] = len(active[group, day])
        cells[group, d, "joins"] = joins[group, day]
        cells[group, d, "leaves"] = leaves[group, day]
    for (group, member), n in per_member.items():
        cells[group, member, "member_messages"] = n
    streaks = {
        (g, m)
        for g, m, d in checkins
        if all((g, m, d - timedelta(days=k)) in checkins for k in range(1, STREAK_DAYS))
    }
    days = sorted({day for _, day in keys})
    return Truth(
        events=len(unique),
        cells=cells,
        offending=offending,
        checkins=checkins,
        streaks=streaks,
        groups=sorted({g for g, _ in keys}),
        days=days,
    )


@dataclass
class Comparison:
    """Expected versus observed numbers, cell by cell."""

    expected: int = 0
    counted: int = 0
    lost: int = 0
    doubled: int = 0
    mismatches: list[str] = field(default_factory=list)

    def add(self, what: str, expected: int, observed: int) -> None:
        self.expected += expected
        self.counted += observed
        if observed < expected:
            self.lost += expected - observed
        if observed > expected:
            self.doubled += observed - expected
        if observed != expected and len(self.mismatches) < 20:
            self.mismatches.append(f"{what}: expected {expected}, got {observed}")

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0
