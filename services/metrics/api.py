"""Metrics routes: thin views that validate, read Redis and answer."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError

from services.common.deps import PrincipalDep, ReadGroup, RedisDep, SettingsDep
from services.metrics import acquisition, cohorts, overview, queries
from services.metrics.descriptions import DESCRIPTIONS
from services.metrics.keys import GroupKeys, day_number, start_of_day_ms, today
from services.metrics.models import (
    Active,
    Activity,
    Channels,
    CohortKind,
    DormantPage,
    Inviters,
    Leaderboard,
    Lifecycle,
    MemberSummary,
    Overview,
    OverviewSort,
    Retention,
    RetentionMode,
    Rolling,
    Window,
)

router = APIRouter(prefix="/v1", tags=["metrics"])

MAX_RANGE_DAYS = 400
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _invalid(name: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", name), "msg": message, "type": "value_error", "input": None}]
    )


def _parse_date(name: str, value: str) -> int:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"{name} is not a calendar date (YYYY-MM-DD)") from None
    if not EARLIEST <= parsed <= LATEST:
        raise _invalid(name, f"{name} must be between {EARLIEST} and {LATEST}")
    return day_number(parsed)


DateParam = Annotated[
    str, Query(pattern=DATE_PATTERN, description="YYYY-MM-DD", examples=["2026-11-21"])
]


@dataclass(frozen=True)
class DayRange:
    """Validated first and last day numbers (inclusive)."""

    first: int
    last: int


def day_range(
    from_: Annotated[
        str, Query(alias="from", pattern=DATE_PATTERN, description="First date, YYYY-MM-DD")
    ],
    to: Annotated[str, Query(pattern=DATE_PATTERN, description="Last date, YYYY-MM-DD")],
) -> DayRange:
    """Check that from ≤ to and the range spans at most MAX_RANGE_DAYS days."""
    first, last = _parse_date("from", from_), _parse_date("to", to)
    if first > last:
        raise _invalid("to", "to must not be before from")
    if last - first + 1 > MAX_RANGE_DAYS:
        raise _invalid("to", f"the range from..to may span at most {MAX_RANGE_DAYS} days")
    return DayRange(first, last)


DayRangeDep = Annotated[DayRange, Depends(day_range)]

UNSEEN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No event of this group was seen (a typo'd group id?)"}
}


def require_seen(client: redis.Redis, group_id: str) -> None:
    """Answer 404 for a group metrics never saw (checked after the parameters, so 422 first)."""
    if not client.exists(GroupKeys(group_id).ids):
        raise HTTPException(404, f"no events seen for group {group_id}")


@router.get(
    "/groups/{group_id}/activity",
    summary="Messages, active members, joins and leaves per day",
    description=DESCRIPTIONS["activity"],
    responses=UNSEEN,
)
def activity(
    group_id: ReadGroup, days: DayRangeDep, client: RedisDep, settings: SettingsDep
) -> Activity:
    require_seen(client, group_id)
    return Activity(
        group_id=group_id,
        timezone=settings.qunyun_timezone,
        days=queries.read_activity(
            client, group_id=group_id, first_day=days.first, last_day=days.last
        ),
    )


@router.get(
    "/groups/{group_id}/active",
    summary="DAU, WAU, MAU and stickiness on a date",
    description=DESCRIPTIONS["active"],
    responses=UNSEEN,
)
def active(group_id: ReadGroup, date: DateParam, client: RedisDep) -> Active:
    require_seen(client, group_id)
    return queries.read_active(client, group_id=group_id, day=_parse_date("date", date))


@router.get(
    "/groups/{group_id}/rolling",
    summary="Messages and active members in the last window",
    description=DESCRIPTIONS["rolling"],
    responses=UNSEEN,
)
def rolling(group_id: ReadGroup, window: Window, client: RedisDep) -> Rolling:
    require_seen(client, group_id)
    return queries.read_rolling(
        client, group_id=group_id, window=window, now_ms=int(time.time() * 1000)
    )


@router.get(
    "/groups/{group_id}/retention",
    summary="Cohort retention by join day or week",
    description=DESCRIPTIONS["retention"],
    responses=UNSEEN,
)
def retention(
    group_id: ReadGroup,
    days: DayRangeDep,
    client: RedisDep,
    settings: SettingsDep,
    cohort: CohortKind = "day",
    periods: Annotated[int, Query(ge=1, le=90, description="Periods after joining, 1..90")] = 7,
    mode: RetentionMode = "exact",
    channel: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description='Only members whose first join came through this channel ("(none)": '
            "joins without one)",
        ),
    ] = None,
) -> Retention:
    require_seen(client, group_id)

    def read(mask: str | None) -> Retention:
        return Retention(
            cohort=cohort,
            mode=mode,
            cohorts=cohorts.read_retention(
                client,
                group_id=group_id,
                kind=cohort,
                mode=mode,
                first_day=days.first,
                last_day=days.last,
                periods=periods,
                today=today(settings.tz),
                mask=mask,
            ),
        )

    if channel is None:
        return read(None)
    bitmap = acquisition.channel_bitmap(client, group_id=group_id, channel=channel)
    mask = GroupKeys(group_id).temp(f"channel:{uuid.uuid4().hex}")
    client.set(mask, bitmap or b"", px=60_000)
    try:
        return read(mask)
    finally:
        client.delete(mask)


@router.get(
    "/groups/{group_id}/lifecycle",
    summary="New, returning, resurrecting and dormant members",
    description=DESCRIPTIONS["lifecycle"],
    responses=UNSEEN,
)
def lifecycle(
    group_id: ReadGroup,
    days: DayRangeDep,
    client: RedisDep,
    period: CohortKind = "day",
) -> Lifecycle:
    require_seen(client, group_id)
    return Lifecycle(
        period=period,
        periods=cohorts.read_lifecycle(
            client, group_id=group_id, kind=period, first_day=days.first, last_day=days.last
        ),
    )


@router.get(
    "/groups/{group_id}/members/dormant",
    summary="Current members silent for N days",
    description=DESCRIPTIONS["dormant"],
    responses=UNSEEN,
)
def dormant(
    group_id: ReadGroup,
    client: RedisDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=400, description="Silent on the last N local days")] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DormantPage:
    require_seen(client, group_id)
    try:
        position = queries.decode_cursor(cursor) if cursor else None
    except queries.InvalidCursor as exc:
        raise _invalid("cursor", str(exc)) from None
    silent_since = start_of_day_ms(today(settings.tz) - days + 1, settings.tz)
    return queries.read_dormant(
        client, group_id=group_id, silent_since_ms=silent_since, limit=limit, cursor=position
    )


@router.get(
    "/groups/{group_id}/leaderboard",
    summary="Top members by messages in the last N days (kicked and banned members left out)",
    description=DESCRIPTIONS["leaderboard"],
    responses=UNSEEN,
)
def leaderboard(
    group_id: ReadGroup,
    client: RedisDep,
    settings: SettingsDep,
    days: Annotated[
        int, Query(ge=1, le=400, description="The last N local days, today included")
    ] = 7,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Leaderboard:
    require_seen(client, group_id)
    last = today(settings.tz)
    return Leaderboard(
        members=queries.read_leaderboard(
            client, group_id=group_id, first_day=last - days + 1, last_day=last, limit=limit
        )
    )


@router.get(
    "/groups/{group_id}/members/{member_id}",
    summary="A member's join, leave, last activity, messages and active days",
    description=DESCRIPTIONS["member"],
    responses={404: {"description": "No event of this group, or of this member, was seen"}},
)
def member(
    group_id: ReadGroup,
    member_id: Annotated[str, Path(min_length=1, max_length=256)],
    client: RedisDep,
) -> MemberSummary:
    require_seen(client, group_id)
    found = queries.read_member(client, group_id=group_id, member_id=member_id)
    if found is None:
        raise HTTPException(404, "no event of this member was seen in this group")
    return found


@router.get(
    "/groups/{group_id}/channels",
    summary="Joins, staying, speaking and retention per acquisition channel",
    description=DESCRIPTIONS["channels"],
    responses=UNSEEN,
)
def channels(group_id: ReadGroup, days: DayRangeDep, client: RedisDep) -> Channels:
    require_seen(client, group_id)
    return Channels(
        channels=acquisition.read_channels(
            client, group_id=group_id, first_day=days.first, last_day=days.last
        )
    )


@router.get(
    "/groups/{group_id}/inviters",
    summary="Joins, staying, speaking and retention of the members each inviter brought",
    description=DESCRIPTIONS["inviters"],
    responses=UNSEEN,
)
def inviters(
    group_id: ReadGroup,
    days: DayRangeDep,
    client: RedisDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Inviters:
    require_seen(client, group_id)
    return Inviters(
        inviters=acquisition.read_inviters(
            client, group_id=group_id, first_day=days.first, last_day=days.last, limit=limit
        )
    )


@router.get(
    "/overview",
    summary="Every group the token may read: members, DAU/WAU/MAU and the last 7 days",
    description=DESCRIPTIONS["portfolio"],
)
def portfolio(
    principal: PrincipalDep,
    client: RedisDep,
    settings: SettingsDep,
    date: Annotated[
        str | None, Query(pattern=DATE_PATTERN, description="YYYY-MM-DD, default today")
    ] = None,
    sort: OverviewSort = "members",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Overview:
    if "read" not in principal.scopes:
        raise HTTPException(403, "token lacks the 'read' scope")
    try:
        position = overview.decode_cursor(cursor) if cursor else None
    except overview.InvalidOverviewCursor as exc:
        raise _invalid("cursor", str(exc)) from None
    day = _parse_date("date", date) if date else today(settings.tz)
    allowed = None if "*" in principal.groups else principal.groups
    return overview.read_overview(
        client, allowed=allowed, day=day, sort=sort, limit=limit, cursor=position
    )
