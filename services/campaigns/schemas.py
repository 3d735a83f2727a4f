"""The REST API's shapes: per-kind params, campaign requests and responses, rewards, winners,
notifications."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_serializer
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from services.campaigns.kinds import PARAMS_MODELS, CampaignCreate, Kind
from services.campaigns.models import MAX_ID, Campaign, Exclusion, Notification, Winner
from services.campaigns.params import CheckinParams, Moment, Reminder, add_example

__all__ = ["PARAMS_MODELS", "CampaignCreate", "Kind"]

Status = Literal["scheduled", "active", "ended", "cancelled"]
AT = "2026-11-20T10:00:00Z"


class _Shown(BaseModel):
    """A response whose `EXAMPLE` the OpenAPI document shows."""

    model_config = ConfigDict(json_schema_extra=add_example)
    EXAMPLE: ClassVar[dict[str, Any] | None] = None


# ---- campaign ------------------------------------------------------------------------------


class CampaignUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    announce_at: Moment | None = None
    reminders: list[Reminder] | None = Field(default=None, max_length=10)
    params: dict[str, Any] | None = PydField(
        default=None,
        description="The whole params of the campaign's kind (as when created); "
        "what is left out takes its default",
    )


class CampaignPublic(_Shown):
    EXAMPLE = {
        "id": "c019a8f3c2b10e4d2a9f61b7",
        "group_id": "demo",
        "kind": "checkin",
        "title": "每日打卡",
        "status": "scheduled",
        "starts_at": "2026-12-01T01:00:00Z",
        "ends_at": "2026-12-08T01:00:00Z",
        "announce_at": "2026-11-30T12:00:00Z",
        "reminders": ["PT1H"],
        "params": CheckinParams.EXAMPLE,
        "created_at": AT,
    }

    id: str
    group_id: str
    kind: str = PydField(description="The campaign's kind (see the create body's kinds)")
    title: str
    status: Status
    starts_at: datetime
    ends_at: datetime
    announce_at: datetime | None
    reminders: list[timedelta] = PydField(description="ISO-8601 durations, earliest first")
    params: dict[str, Any] = PydField(description="The params of the kind, defaults filled in")
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


class CampaignList(_Shown):
    EXAMPLE = {"campaigns": [CampaignPublic.EXAMPLE], "next_cursor": CampaignPublic.EXAMPLE["id"]}

    campaigns: list[CampaignPublic]
    next_cursor: str | None


# ---- participation -------------------------------------------------------------------------


class ParticipantPublic(BaseModel):
    member_id: str
    joined_at: datetime
    count: int


class ParticipantList(_Shown):
    EXAMPLE = {
        "participants": [{"member_id": "alice", "joined_at": AT, "count": 3}],
        "next_cursor": "alice",
    }

    participants: list[ParticipantPublic]
    next_cursor: str | None


# ---- rewards -------------------------------------------------------------------------------


class LedgerEntry(BaseModel):
    campaign_id: str
    reason: str
    points: int
    badge: str | None
    created_at: datetime


class MemberRewards(_Shown):
    EXAMPLE = {
        "member_id": "alice",
        "points": 60,
        "badges": ["七日打卡"],
        "ledger": [
            {
                "campaign_id": CampaignPublic.EXAMPLE["id"],
                "reason": "streak:7",
                "points": 50,
                "badge": "七日打卡",
                "created_at": AT,
            }
        ],
        "next_cursor": "g019a8f3c2b20f1e5c7d0a3b9",
    }

    member_id: str
    points: int
    badges: list[str]
    ledger: list[LedgerEntry]
    next_cursor: str | None


class PointsRow(BaseModel):
    member_id: str
    points: int


class PointsLeaderboard(_Shown):
    EXAMPLE = {"members": [{"member_id": "alice", "points": 60}]}

    members: list[PointsRow]


class WinnerPublic(BaseModel):
    member_id: str
    prize: str
    round: int = PydField(description="0 for the draw, 1, 2, … for rerolls")
    status: str = PydField(description="won, claimed or forfeited")

    @classmethod
    def of(cls, w: Winner) -> WinnerPublic:
        return cls(member_id=w.member_id, prize=w.prize, round=w.round, status=w.status)


class WinnersPublic(_Shown):
    EXAMPLE = {
        "seed_sha256": "8c878b644a5da2a40569de79378ca7a242377bf65513568490362fa3d768570c",
        "seed": "5d1f" * 16,
        "drawn_at": AT,
        "winners": [{"member_id": "bob", "prize": "周边", "round": 0, "status": "won"}],
    }

    seed_sha256: str | None
    seed: str | None
    drawn_at: datetime | None
    winners: list[WinnerPublic]


class RerollRequest(BaseModel):
    member_ids: list[Annotated[str, PydField(min_length=1, max_length=MAX_ID)]] = PydField(
        min_length=1, max_length=1000, description="Winners whose unclaimed prizes are redrawn"
    )


# ---- notifications -------------------------------------------------------------------------


class NotificationDelivery(BaseModel):
    outcome: str = PydField(
        description="delivered, recorded, unsupported, forbidden, expired, failed or no_route"
    )
    detail: str
    updated_at: datetime = PydField(description="When delivery produced this (latest) receipt")


class NotificationPublic(BaseModel):
    id: str
    group_id: str
    source: str | None = PydField(description="The source of the group's latest event, if any")
    campaign_id: str
    kind: str
    text: str
    reply_to: str | None = PydField(default=None, description="The message replied to, if any")
    mentions: list[str] = PydField(description="Member ids named in `text`")
    data: dict[str, Any]
    created_at: datetime
    delivery: NotificationDelivery | None = PydField(
        default=None,
        description="The latest delivery receipt's outcome; null until delivery answers",
    )

    @classmethod
    def of(cls, n: Notification) -> NotificationPublic:
        delivery = None
        if n.delivery_outcome is not None and n.delivery_updated_at is not None:
            delivery = NotificationDelivery(
                outcome=n.delivery_outcome,
                detail=n.delivery_detail or "",
                updated_at=n.delivery_updated_at,
            )
        return cls(**n.model_dump(include=set(cls.model_fields) - {"delivery"}), delivery=delivery)


class NotificationList(_Shown):
    EXAMPLE = {
        "notifications": [
            {
                "id": CampaignPublic.EXAMPLE["id"] + ":winners",
                "group_id": "demo",
                "source": "tg-main",
                "campaign_id": CampaignPublic.EXAMPLE["id"],
                "kind": "winners",
                "text": "【开奖】周末抽奖：@小明（周边）",
                "reply_to": None,
                "mentions": ["tg:42"],
                "data": {"round": 0, "winners": [{"member_id": "tg:42", "prize": "周边"}]},
                "created_at": AT,
                "delivery": {"outcome": "delivered", "detail": "", "updated_at": AT},
            }
        ],
        "next_cursor": "019a8f3c2b10a3f4c2d1e9b0",
    }

    notifications: list[NotificationPublic]
    next_cursor: str | None


# ---- polls, feedback, exclusions -----------------------------------------------------------


class PollOptionResult(BaseModel):
    option: int = PydField(description="The option's number, from 1")
    text: str
    votes: int


class PollResults(_Shown):
    EXAMPLE = {
        "question": "下次分享会选哪个主题？",
        "options": [
            {"option": 1, "text": "护肤入门", "votes": 3},
            {"option": 2, "text": "彩妆技巧", "votes": 2},
        ],
        "voters": 5,
    }

    question: str
    options: list[PollOptionResult]
    voters: int = PydField(description="Eligible members with a counted vote")


FeedbackStatus = Literal["new", "accepted", "rejected", "done"]


class FeedbackItemPublic(_Shown):
    EXAMPLE = {
        "id": "f019a8f3c2b10e4d2a9f61b7",
        "member_id": "tg:42",
        "text": "#反馈 bug 登录后头像不显示",
        "category": "bug",
        "status": "new",
        "created_at": AT,
    }

    id: str
    member_id: str
    text: str
    category: str | None
    status: FeedbackStatus
    created_at: datetime = PydField(description="When the message was sent")


class FeedbackList(_Shown):
    EXAMPLE = {"feedback": [FeedbackItemPublic.EXAMPLE], "next_cursor": "f019a8f3c2b10e4d2a9f61b7"}

    feedback: list[FeedbackItemPublic]
    next_cursor: str | None


class FeedbackUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FeedbackStatus | None = PydField(
        default=None, description="accepted grants the campaign's points_accepted once per item"
    )
    category: str | None = PydField(
        default=None,
        max_length=32,
        description="One of the campaign's categories; null clears it",
    )


class ExclusionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: str = PydField(min_length=1, max_length=MAX_ID)
    reason: str = PydField(default="", max_length=1000)


class ExclusionPublic(_Shown):
    EXAMPLE = {
        "member_id": "tg:42",
        "cause": "manual",
        "reason": "刷屏拉票",
        "by": "ops-dashboard",
        "created_at": AT,
    }

    member_id: str
    cause: Literal["mute", "kick", "ban", "manual"] = PydField(
        description="A moderation action during the campaign, or an operator (manual)"
    )
    reason: str
    by: str = PydField(description="The moderation case id, or the operator's token name")
    created_at: datetime

    @classmethod
    def of(cls, e: Exclusion) -> ExclusionPublic:
        return cls.model_validate(e, from_attributes=True)


class ExclusionList(_Shown):
    EXAMPLE = {"exclusions": [ExclusionPublic.EXAMPLE], "next_cursor": "x019a8f3c2b10e4d2a9f61b7"}

    exclusions: list[ExclusionPublic]
    next_cursor: str | None
