"""The REST API's shapes: per-kind params, campaign requests and responses, rewards, winners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_serializer
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from services.campaigns.models import MAX_ID, Campaign, Winner

Kind = Literal["checkin", "lottery", "challenge", "event"]
Status = Literal["scheduled", "active", "ended", "cancelled"]

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


class ParticipantPublic(BaseModel):
    member_id: str
    joined_at: datetime
    count: int


class ParticipantList(BaseModel):
    participants: list[ParticipantPublic]
    next_cursor: str | None


# ---- rewards -------------------------------------------------------------------------------


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


class WinnerPublic(BaseModel):
    member_id: str
    prize: str
    round: int
    status: str

    @classmethod
    def of(cls, w: Winner) -> WinnerPublic:
        return cls(member_id=w.member_id, prize=w.prize, round=w.round, status=w.status)


class WinnersPublic(BaseModel):
    seed_sha256: str | None
    seed: str | None
    drawn_at: datetime | None
    winners: list[WinnerPublic]


class RerollRequest(BaseModel):
    member_ids: list[Annotated[str, PydField(min_length=1, max_length=MAX_ID)]] = PydField(
        min_length=1, max_length=1000, description="Winners whose unclaimed prizes are redrawn"
    )
