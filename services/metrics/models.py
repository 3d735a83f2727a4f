"""Response models of the metrics API (the shapes of DESIGN.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Window = Literal["5m", "1h", "24h"]
CohortKind = Literal["day", "week"]
RetentionMode = Literal["exact", "unbounded"]


class DayActivity(BaseModel):
    date: date
    messages: int
    active_members: int
    joins: int
    leaves: int


class Activity(BaseModel):
    group_id: str
    timezone: str
    days: list[DayActivity]


class Active(BaseModel):
    date: date
    dau: int
    wau: int = Field(description="Members active in the 7 days ending on date")
    mau: int = Field(description="Members active in the 30 days ending on date")
    stickiness: float = Field(description="dau / mau, 0 when mau is 0")


class Rolling(BaseModel):
    window: Window
    messages: int
    active_members: int


class RetentionPeriod(BaseModel):
    period: int
    count: int | None = Field(description="null while the period has not begun")
    rate: float | None = Field(description="count / size; null while the period has not begun")


class Cohort(BaseModel):
    cohort: date = Field(description="The join day, or the Monday of the join week")
    size: int
    periods: list[RetentionPeriod]


class Retention(BaseModel):
    cohort: CohortKind
    mode: RetentionMode
    cohorts: list[Cohort]


class LifecyclePeriod(BaseModel):
    period: date = Field(description="The day, or the Monday of the week")
    active: int = Field(description="new + returning + resurrecting")
    new: int
    returning: int
    resurrecting: int
    dormant: int


class Lifecycle(BaseModel):
    period: CohortKind
    periods: list[LifecyclePeriod]


class DormantMember(BaseModel):
    member_id: str
    display_name: str | None = Field(default=None, description="The latest display name seen")
    joined_at: datetime | None
    last_active_at: datetime | None


class DormantPage(BaseModel):
    members: list[DormantMember]
    next_cursor: str | None


class Leader(BaseModel):
    member_id: str
    display_name: str | None = Field(default=None, description="The latest display name seen")
    messages: int


class Leaderboard(BaseModel):
    members: list[Leader]


class MemberSummary(BaseModel):
    member_id: str
    display_name: str | None = Field(default=None, description="The latest display name seen")
    joined_at: datetime | None = Field(description="The first join seen")
    left_at: datetime | None = Field(description="The last leave, null while a member")
    last_active_at: datetime | None
    messages: int
    active_days: int
    channel: str | None = Field(default=None, description="The first join's channel")
    invited_by: str | None = Field(default=None, description="The first join's inviter")


class AcquisitionCounts(BaseModel):
    joins: int = Field(description="Members whose first join falls in from..to")
    still_members: int = Field(description="Of them, members now (not left)")
    spoke: int = Field(description="Of them, active on their join day or later")
    retained_d7: int = Field(description="Of them, active on join day + 7 or any later day")
    retained_d30: int = Field(description="Of them, active on join day + 30 or any later day")


class ChannelRow(AcquisitionCounts):
    channel: str = Field(description='The first join\'s channel, "(none)" for joins without one')


class Channels(BaseModel):
    channels: list[ChannelRow]


class InviterRow(AcquisitionCounts):
    member_id: str = Field(description="The inviter (invited_by of the members' first join)")
    display_name: str | None = None


class Inviters(BaseModel):
    inviters: list[InviterRow]


OverviewSort = Literal["members", "dau", "mau", "joins_7d", "leaves_7d"]


class OverviewGroup(BaseModel):
    group_id: str
    members: int = Field(description="Current members, now")
    dau: int
    wau: int
    mau: int
    messages_7d: int = Field(description="Messages on the 7 days ending on date")
    joins_7d: int
    leaves_7d: int


class Overview(BaseModel):
    date: date
    groups: list[OverviewGroup]
    next_cursor: str | None
