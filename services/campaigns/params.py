"""Campaign params per kind, each with the example the OpenAPI document shows, and the time
type every campaign field shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydField
from pydantic_core import PydanticCustomError

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01 and 2200-01-01")
    return value.astimezone(UTC)


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
"""A timezone-aware time in a range every database and timezone conversion can hold."""

Reminder = Annotated[
    timedelta,
    PydField(
        gt=timedelta(0),
        le=timedelta(days=366),
        description="ISO-8601 duration before the start, e.g. PT1H (at most a year)",
    ),
]
Points = Annotated[int, PydField(ge=0, le=1_000_000)]
Keyword = Annotated[
    str,
    PydField(
        min_length=1,
        max_length=64,
        description="Matched in the message text after NFKC and case folding",
    ),
]
Badge = Annotated[str, PydField(min_length=1, max_length=64, description="A badge's name")]


def add_example(schema: dict[str, Any], cls: type) -> None:
    """Show a model's `EXAMPLE` in its JSON schema (a pydantic `json_schema_extra`)."""
    example = getattr(cls, "EXAMPLE", None)
    if example is not None:
        schema["examples"] = [example]


def _distinct(values: list[Any], what: str) -> None:
    if len(values) != len(set(values)):
        raise PydanticCustomError("value_error", f"{what} must be distinct")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=add_example)
    EXAMPLE: ClassVar[dict[str, Any] | None] = None


class StreakReward(_Params):
    """A bonus once a member's check-in streak reaches `days` local days."""

    EXAMPLE = {"days": 7, "points": 50, "badge": "七日打卡"}

    days: int = PydField(ge=1, le=3650)
    points: Points = 0
    badge: Badge | None = None


class CheckinParams(_Params):
    """checkin: a keyword message checks a member in once per local day."""

    EXAMPLE = {
        "keyword": "打卡",
        "points": 10,
        "streak_rewards": [StreakReward.EXAMPLE],
        "grace_days": 0,
    }

    keyword: Keyword = "打卡"
    points: Points = PydField(default=10, description="Granted for each check-in")
    streak_rewards: list[StreakReward] = PydField(default_factory=list, max_length=50)
    grace_days: int = PydField(
        default=0, ge=0, le=30, description="Days a streak may skip without breaking"
    )

    @field_validator("streak_rewards")
    @classmethod
    def _distinct_days(cls, value: list[StreakReward]) -> list[StreakReward]:
        _distinct([r.days for r in value], "streak lengths")
        return value


class Prize(_Params):
    """A prize and how many of it the lottery gives away."""

    EXAMPLE = {"name": "周边", "quantity": 2, "points": 0}

    name: str = PydField(min_length=1, max_length=64)
    quantity: int = PydField(ge=1, le=10_000)
    points: Points = PydField(default=0, description="Granted with the prize")


class Eligibility(_Params):
    """Who may win: entrants failing these are not drawn."""

    EXAMPLE = {"joined_before": "2026-11-01T00:00:00+08:00", "min_messages": 5}

    joined_before: Moment | None = None
    min_messages: int = PydField(default=0, ge=0, le=1_000_000)
    exclude_previous_winners: bool = False


class LotteryParams(_Params):
    """lottery: entry by keyword (or any message when null), drawn verifiably at the end."""

    EXAMPLE = {
        "entry_keyword": "抽奖",
        "prizes": [Prize.EXAMPLE],
        "eligibility": Eligibility.EXAMPLE,
    }

    entry_keyword: Keyword | None = None
    prizes: list[Prize] = PydField(min_length=1, max_length=50)
    eligibility: Eligibility = PydField(default_factory=Eligibility)
    draw_delay_seconds: int = PydField(
        default=5,
        ge=0,
        le=3600,
        description="Wait after the end so entries still in the consumer's lag are counted",
    )

    @field_validator("prizes")
    @classmethod
    def _distinct_names(cls, value: list[Prize]) -> list[Prize]:
        _distinct([p.name for p in value], "prize names")
        return value


class ChallengeParams(_Params):
    """challenge: `goal_messages` messages in the window earn the reward."""

    EXAMPLE = {"goal_messages": 20, "points": 100, "badge": "活跃之星"}

    goal_messages: int = PydField(ge=1, le=1_000_000)
    points: Points = 0
    badge: Badge | None = None


class EventParams(_Params):
    """event: a lecture or meetup, announced with its place and optional attendance keyword."""

    EXAMPLE = {
        "location": "线上",
        "url": "https://meeting.example.com/j/123",
        "attendance_keyword": "签到",
        "points": 5,
    }

    location: str | None = PydField(default=None, max_length=500)
    url: str | None = PydField(default=None, max_length=2000)
    attendance_keyword: Keyword | None = None
    points: Points = PydField(default=0, description="Granted for attending")
