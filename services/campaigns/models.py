"""Campaigns, participations, grants, prizes, winners and the outbox, as SQLModel families."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_serializer
from pydantic import Field as PydField
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel

Kind = Literal["checkin", "lottery", "challenge", "event"]
Status = Literal["scheduled", "active", "ended", "cancelled"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
MAX_ID = 256


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Return a time-sortable random id: prefix, 12 hex digits of milliseconds, 10 random."""
    return f"{prefix}{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01 and 2200-01-01")
    return value.astimezone(UTC)


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
"""A timezone-aware time in a range every database and timezone conversion can hold."""

# ---- params per kind -----------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreakReward(_Params):
    days: int = PydField(ge=1, le=3650)
    points: int = PydField(default=0, ge=0, le=1_000_000)
    badge: str | None = PydField(default=None, min_length=1, max_length=64)


class CheckinParams(_Params):
    keyword: str = PydField(default="打卡", min_length=1, max_length=64)
    points: int = PydField(default=10, ge=0, le=1_000_000)
    streak_rewards: list[StreakReward] = PydField(default_factory=list, max_length=50)
    grace_days: int = PydField(default=0, ge=0, le=30)


class Prize(_Params):
    name: str = PydField(min_length=1, max_length=64)
    quantity: int = PydField(ge=1, le=10_000)
    points: int = PydField(default=0, ge=0, le=1_000_000)


class Eligibility(_Params):
    joined_before: Moment | None = None
    min_messages: int = PydField(default=0, ge=0, le=1_000_000)
    exclude_previous_winners: bool = False


class LotteryParams(_Params):
    entry_keyword: str | None = PydField(default=None, min_length=1, max_length=64)
    prizes: list[Prize] = PydField(min_length=1, max_length=50)
    eligibility: Eligibility = PydField(default_factory=Eligibility)
    draw_delay_seconds: int = PydField(
        default=5,
        ge=0,
        le=3600,
        description="Wait after the end so entries still in the consumer's lag are counted",
    )


class ChallengeParams(_Params):
    goal_messages: int = PydField(ge=1, le=1_000_000)
    points: int = PydField(default=0, ge=0, le=1_000_000)
    badge: str | None = PydField(default=None, min_length=1, max_length=64)


class EventParams(_Params):
    location: str | None = PydField(default=None, max_length=500)
    url: str | None = PydField(default=None, max_length=2000)
    attendance_keyword: str | None = PydField(default=None, min_length=1, max_length=64)
    points: int = PydField(default=0, ge=0, le=1_000_000)


PARAMS_MODELS: dict[str, type[_Params]] = {
    "checkin": CheckinParams,
    "lottery": LotteryParams,
    "challenge": ChallengeParams,
    "event": EventParams,
}

# ---- campaign ------------------------------------------------------------------------------

Reminder = Annotated[
    timedelta,
    PydField(
        gt=timedelta(0),
        le=timedelta(days=366),
        description="ISO-8601 duration before the start, e.g. PT1H (at most a year)",
    ),
]


class CampaignBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    starts_at: Moment
    ends_at: Moment
    announce_at: Moment | None = None


class CampaignCreate(CampaignBase):
    kind: Kind
    reminders: list[Reminder] = Field(default_factory=list, max_length=10)
    params: dict[str, Any] = Field(default_factory=dict)


class CampaignUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    announce_at: Moment | None = None
    reminders: list[Reminder] | None = Field(default=None, max_length=10)
    params: dict[str, Any] | None = None


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns_campaign"
    __table_args__ = (
        sa.Index("ix_campaigns_campaign_group_id", "group_id", "id"),
        sa.Index("ix_campaigns_campaign_due", "status", "next_due_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=MAX_ID)
    kind: str = Field(max_length=16)
    title: str = Field(max_length=200)
    status: str = Field(default="scheduled", max_length=16)
    starts_at: datetime = ts_column()
    ends_at: datetime = ts_column()
    announce_at: datetime | None = ts_column(nullable=True)
    reminders: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts_column()
    updated_at: datetime = ts_column()
    version: int = 1
    announced_at: datetime | None = ts_column(nullable=True)
    reminders_sent: int = 0
    started_at: datetime | None = ts_column(nullable=True)
    ended_at: datetime | None = ts_column(nullable=True)
    drawn_at: datetime | None = ts_column(nullable=True)
    draw_round: int = 0
    seed: str | None = Field(default=None, max_length=64)
    seed_sha256: str | None = Field(default=None, max_length=64)
    next_due_at: datetime | None = ts_column(nullable=True)


class CampaignPublic(SQLModel):
    id: str
    group_id: str
    kind: str
    title: str
    status: str
    starts_at: datetime
    ends_at: datetime
    announce_at: datetime | None
    reminders: list[timedelta]
    params: dict[str, Any]
    created_at: datetime

    @field_serializer("reminders")
    def _iso(self, value: list[timedelta]) -> list[str]:
        return [iso_duration(v) for v in value]

    @classmethod
    def of(cls, c: Campaign) -> CampaignPublic:
        return cls(
            id=c.id,
            group_id=c.group_id,
            kind=c.kind,
            title=c.title,
            status=c.status,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            announce_at=c.announce_at,
            reminders=[timedelta(seconds=s) for s in c.reminders],
            params=c.params,
            created_at=c.created_at,
        )


def iso_duration(value: timedelta) -> str:
    """Return an ISO-8601 duration such as P1DT2H or PT30M."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "" if days else "T0S")


class CampaignList(BaseModel):
    campaigns: list[CampaignPublic]
    next_cursor: str | None


# ---- participation -------------------------------------------------------------------------


class Participant(SQLModel, table=True):
    __tablename__ = "campaigns_participant"

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    joined_at: datetime = ts_column()
    count: int = 0
    entered: bool = False
    streak: int = 0


class ParticipantPublic(BaseModel):
    member_id: str
    joined_at: datetime
    count: int


class ParticipantList(BaseModel):
    participants: list[ParticipantPublic]
    next_cursor: str | None


class CheckinDay(SQLModel, table=True):
    __tablename__ = "campaigns_checkin_day"

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    day: date = Field(primary_key=True)


class Member(SQLModel, table=True):
    """When a member last joined a group, learnt from member.joined events."""

    __tablename__ = "campaigns_member"

    group_id: str = Field(primary_key=True, max_length=MAX_ID)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    joined_at: datetime = ts_column()


class ProcessedEvent(SQLModel, table=True):
    """An event whose effects are committed; written in the same transaction as the effects."""

    __tablename__ = "campaigns_processed_event"

    source: str = Field(primary_key=True, max_length=MAX_ID)
    event_id: str = Field(primary_key=True, max_length=MAX_ID)
    processed_at: datetime = ts_column(index=True)


# ---- rewards -------------------------------------------------------------------------------


class Grant(SQLModel, table=True):
    __tablename__ = "campaigns_grant"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "member_id", "reason", name="uq_campaigns_grant_once"),
        sa.Index("ix_campaigns_grant_member", "group_id", "member_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=MAX_ID)
    campaign_id: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    member_id: str = Field(max_length=MAX_ID)
    reason: str = Field(max_length=128)
    points: int = 0
    badge: str | None = Field(default=None, max_length=64)
    created_at: datetime = ts_column()


class LedgerEntry(BaseModel):
    campaign_id: str
    reason: str
    points: int
    badge: str | None
    created_at: datetime


class MemberRewards(BaseModel):
    member_id: str
    points: int
    badges: list[str]
    ledger: list[LedgerEntry]
    next_cursor: str | None


class PointsRow(BaseModel):
    member_id: str
    points: int


class PointsLeaderboard(BaseModel):
    members: list[PointsRow]


class PrizeStock(SQLModel, table=True):
    __tablename__ = "campaigns_prize"

    campaign_id: str = Field(primary_key=True, max_length=32)
    position: int = Field(primary_key=True)
    name: str = Field(max_length=64)
    quantity: int
    remaining: int
    points: int = 0


class Winner(SQLModel, table=True):
    __tablename__ = "campaigns_winner"

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    group_id: str = Field(max_length=MAX_ID, index=True)
    prize: str = Field(max_length=64)
    position: int
    round: int = 0
    rank: int = 0
    status: str = Field(default="won", max_length=16)
    created_at: datetime = ts_column()


class WinnerPublic(BaseModel):
    member_id: str
    prize: str
    round: int
    status: str


class WinnersPublic(BaseModel):
    seed_sha256: str | None
    seed: str | None
    drawn_at: datetime | None
    winners: list[WinnerPublic]


class RerollRequest(BaseModel):
    member_ids: list[Annotated[str, PydField(min_length=1, max_length=MAX_ID)]] = PydField(
        min_length=1, max_length=1000, description="Winners whose unclaimed prizes are redrawn"
    )


# ---- outbox --------------------------------------------------------------------------------


class Outbox(SQLModel, table=True):
    """A record to publish after commit; `message_id` is the record's id on the topic."""

    __tablename__ = "campaigns_outbox"
    __table_args__ = (sa.Index("ix_campaigns_outbox_pending", "published_at", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=200, unique=True)
    stream: str = Field(max_length=16)
    key: str = Field(max_length=MAX_ID)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts_column()
    published_at: datetime | None = ts_column(nullable=True)
    claim_token: str | None = Field(default=None, max_length=32)
    claimed_at: datetime | None = ts_column(nullable=True)
