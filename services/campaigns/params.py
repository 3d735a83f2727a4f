"""Campaign params per kind, each with the example the OpenAPI document shows, and the time
type every campaign field shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydField
from pydantic_core import PydanticCustomError

from services.campaigns.texts import (
    AnnounceTemplate,
    EndedTemplate,
    ReminderTemplate,
    ReplyTemplate,
    ResultsTemplate,
    StartedTemplate,
    WelcomeTemplate,
    WinnersTemplate,
)
from services.common.text import fold

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


class Texts(_Params):
    """Templates replacing the kind's default posts (docs/campaigns.md lists the defaults and
    placeholders); null keeps the default, "" posts nothing."""

    EXAMPLE = {"announce": "【预告】{title} {starts_at} 开始{details}", "ended": ""}

    announce: AnnounceTemplate | None = None
    reminder: ReminderTemplate | None = None
    started: StartedTemplate | None = None
    ended: EndedTemplate | None = None


class LotteryTexts(Texts):
    """A lottery's templates: those of every kind and its draw's `winners`."""

    winners: WinnersTemplate | None = None


class PollTexts(Texts):
    """A poll's templates: those of every kind and its `results` post."""

    results: ResultsTemplate | None = None


TEXTS_DOC = "Templates replacing the default posts (null keeps the default, empty posts nothing)"


class StreakReward(_Params):
    """A bonus once a member's check-in streak reaches `days` local days."""

    EXAMPLE = {"days": 7, "points": 50, "badge": "七日打卡"}

    days: int = PydField(ge=1, le=3650)
    points: Points = 0
    badge: Badge | None = None


KeywordMatch = Literal["exact", "prefix", "contains"]


class CheckinParams(_Params):
    """checkin: a keyword message checks a member in once per local day."""

    EXAMPLE = {
        "keyword": "打卡",
        "match": "exact",
        "points": 10,
        "streak_rewards": [StreakReward.EXAMPLE],
        "grace_days": 0,
    }

    keyword: Keyword = "打卡"
    match: KeywordMatch = PydField(
        default="exact",
        description="exact: the message is the keyword (punctuation, emoji and spaces aside); "
        "prefix: it starts with the keyword; contains: the keyword is anywhere in it",
    )
    points: Points = PydField(default=10, description="Granted for each check-in")
    streak_rewards: list[StreakReward] = PydField(default_factory=list, max_length=50)
    grace_days: int = PydField(
        default=0, ge=0, le=30, description="Days a streak may skip without breaking"
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)

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


class VoterEligibility(_Params):
    """Who counts: members failing these (or muted, kicked, banned or excluded during the
    campaign) are left out."""

    EXAMPLE = {"joined_before": "2026-11-01T00:00:00+08:00", "min_messages": 5}

    joined_before: Moment | None = PydField(
        default=None, description="Members who (re)joined at or after this time are left out"
    )
    min_messages: int = PydField(
        default=0, ge=0, le=1_000_000, description="Messages in the campaign's window"
    )


class Eligibility(VoterEligibility):
    """Who may win: entrants failing these are not drawn."""

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
    texts: LotteryTexts = PydField(default_factory=LotteryTexts, description=TEXTS_DOC)

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
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)


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
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)


class WelcomeParams(_Params):
    """welcome: members who join within `batch_seconds` of a batch's first join are greeted
    together in one post."""

    EXAMPLE = {"text": "欢迎 {members} 加入！请先看置顶的群规～", "batch_seconds": 60}

    text: WelcomeTemplate = "欢迎 {members} 加入！"
    batch_seconds: int = PydField(
        default=60,
        ge=1,
        le=86_400,
        description="Joins this long after a batch's first join are greeted with it, in one post",
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)


def _folds_to_something(keyword: str) -> str:
    if not fold(keyword):
        raise ValueError("must hold a letter or digit (punctuation and spaces are ignored)")
    return keyword


TriggerKeyword = Annotated[Keyword, AfterValidator(_folds_to_something)]


class Trigger(_Params):
    """A question and its answer: a message holding any of `keywords` gets `reply`."""

    EXAMPLE = {"keywords": ["群规", "规则"], "reply": "{member} 群规请看置顶公告～"}

    keywords: list[TriggerKeyword] = PydField(
        min_length=1,
        max_length=50,
        description="Matched like moderation keywords: width, case, traditional/simplified, "
        "spacing and symbols between the characters do not matter",
    )
    reply: ReplyTemplate


class AutoreplyParams(_Params):
    """autoreply: keyword triggers answered with a reply to the triggering message."""

    EXAMPLE = {"triggers": [Trigger.EXAMPLE], "cooldown_seconds": 60}

    triggers: list[Trigger] = PydField(min_length=1, max_length=100)
    cooldown_seconds: int = PydField(
        default=60,
        ge=1,
        le=7 * 86_400,
        description="Each trigger answers at most once in this long per group (by the "
        "messages' occurred_at)",
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)


class BroadcastMessage(_Params):
    """A scheduled post: `text` as it is, posted once at `at`."""

    EXAMPLE = {"at": "2026-12-01T09:00:00+08:00", "text": "早安！今天的话题：冬季护肤"}

    at: Moment = PydField(description="Within the campaign's window [starts_at, ends_at)")
    text: str = PydField(min_length=1, max_length=4000, description="Posted as it is")


class BroadcastParams(_Params):
    """broadcast: scheduled posts (群SOP), each posted once at its time."""

    EXAMPLE = {"messages": [BroadcastMessage.EXAMPLE]}

    messages: list[BroadcastMessage] = PydField(
        min_length=1, max_length=500, description="Posted in time order (equal times: as given)"
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)


OptionText = Annotated[str, PydField(min_length=1, max_length=200)]
Category = Annotated[str, PydField(min_length=1, max_length=32)]


class PollParams(_Params):
    """poll: members vote by `vote_keyword` and an option number; results posted at the end."""

    EXAMPLE = {
        "question": "下次分享会选哪个主题？",
        "options": ["护肤入门", "彩妆技巧", "穿搭"],
        "vote_keyword": "投票",
        "multiple": False,
        "eligibility": {"joined_before": None, "min_messages": 0},
    }

    question: str = PydField(min_length=1, max_length=500)
    options: list[OptionText] = PydField(
        min_length=2, max_length=20, description="Numbered from 1 in this order"
    )
    vote_keyword: Keyword = PydField(
        default="投票", description="A vote is a message starting with it and an option number"
    )
    multiple: bool = PydField(
        default=False,
        description="false: one option per member, a later vote replaces an earlier one; "
        "true: a member may vote for several options (once each)",
    )
    eligibility: VoterEligibility = PydField(default_factory=VoterEligibility)
    results_delay_seconds: int = PydField(
        default=5,
        ge=0,
        le=3600,
        description="Wait after the end so votes still in the consumer's lag are counted",
    )
    texts: PollTexts = PydField(default_factory=PollTexts, description=TEXTS_DOC)

    @field_validator("options")
    @classmethod
    def _distinct_options(cls, value: list[str]) -> list[str]:
        _distinct(value, "options")
        return value


class FeedbackParams(_Params):
    """feedback: messages carrying `tag` become feedback items; accepted ones earn points."""

    EXAMPLE = {"tag": "#反馈", "categories": ["bug", "idea"], "points_accepted": 20}

    tag: Keyword = PydField(default="#反馈", description="A message holding it is feedback")
    categories: list[Category] = PydField(
        default_factory=list,
        max_length=50,
        description="The word right after the tag (`#反馈 bug …`) sets an item's category",
    )
    points_accepted: Points = PydField(
        default=0, description="Granted once per item when it is set to accepted"
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)

    @field_validator("categories")
    @classmethod
    def _distinct_categories(cls, value: list[str]) -> list[str]:
        _distinct([c.casefold() for c in value], "categories")
        return value


class InviteParams(_Params):
    """invite: inviters earn points for each invitee still a member `retain_days` later."""

    EXAMPLE = {"points_per_invitee": 10, "retain_days": 7}

    points_per_invitee: Points = 10
    retain_days: float = PydField(
        default=7,
        ge=0,
        le=365,
        description="Days (fractions allowed) the invitee must stay after joining",
    )
    texts: Texts = PydField(default_factory=Texts, description=TEXTS_DOC)
