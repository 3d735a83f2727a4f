"""The campaigns tables: campaigns, participation, grants, prizes, winners, what the events
tell about groups and members, the notifications sent (with their delivery) and the outbox.

The request and response shapes of the REST API are in `schemas.py`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from services.common.db import UTCDateTime, utc_column
from services.common.outbox import OutboxRecord

MAX_ID = 256


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
    starts_at: datetime = utc_column()
    ends_at: datetime = utc_column()
    announce_at: datetime | None = utc_column(nullable=True)
    reminders: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    version: int = 1
    announced_at: datetime | None = utc_column(nullable=True)
    reminders_sent: int = 0
    started_at: datetime | None = utc_column(nullable=True)
    ended_at: datetime | None = utc_column(nullable=True)
    drawn_at: datetime | None = utc_column(nullable=True)
    draw_round: int = 0
    seed: str | None = Field(default=None, max_length=64)
    seed_sha256: str | None = Field(default=None, max_length=64)
    next_due_at: datetime | None = utc_column(nullable=True)
    broadcasts_sent: int = 0


class Participant(SQLModel, table=True):
    __tablename__ = "campaigns_participant"

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    joined_at: datetime = utc_column()
    count: int = 0
    entered: bool = False
    streak: int = 0


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
    joined_at: datetime = utc_column()


class GroupSource(SQLModel, table=True):
    """The source of a group's latest event (by `occurred_at`): where its posts go."""

    __tablename__ = "campaigns_group_source"

    group_id: str = Field(primary_key=True, max_length=MAX_ID)
    source: str = Field(max_length=MAX_ID)
    occurred_at: datetime = utc_column()


class MemberName(SQLModel, table=True):
    """A member's latest display name in a group, from the events that carry one."""

    __tablename__ = "campaigns_member_name"

    group_id: str = Field(primary_key=True, max_length=MAX_ID)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    display_name: str = Field(max_length=256)
    seen_at: datetime = utc_column()


class Notification(SQLModel, table=True):
    """A notification as published, with the outcome of its latest delivery receipt.

    `position` (creation time, then randomness) orders a campaign's notifications.
    """

    __tablename__ = "campaigns_notification"
    __table_args__ = (sa.Index("ix_campaigns_notification_campaign", "campaign_id", "position"),)

    id: str = Field(primary_key=True, max_length=200)
    position: str = Field(max_length=40, unique=True)
    group_id: str = Field(max_length=MAX_ID)
    campaign_id: str = Field(max_length=32)
    source: str | None = Field(default=None, max_length=MAX_ID)
    kind: str = Field(max_length=16)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    reply_to: str | None = Field(default=None, max_length=MAX_ID)
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()
    delivery_outcome: str | None = Field(default=None, max_length=16)
    delivery_detail: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    delivery_attempts: int = 0
    delivery_updated_at: datetime | None = utc_column(nullable=True)


class WelcomeJoin(SQLModel, table=True):
    """A join a welcome campaign greets: pending until the scheduler posts its batch at
    `due_at` (`joined_at` + the campaign's `batch_seconds`) and sets `batch_id` (the welcome
    notification's id, or the batch's id when everyone in it had left: `left_at`)."""

    __tablename__ = "campaigns_welcome_join"
    __table_args__ = (
        sa.Index("ix_campaigns_welcome_join_pending", "batch_id", "due_at"),
        sa.Index("ix_campaigns_welcome_join_member", "group_id", "member_id"),
    )

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    joined_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    group_id: str = Field(max_length=MAX_ID)
    due_at: datetime = utc_column()
    left_at: datetime | None = utc_column(nullable=True)
    batch_id: str | None = Field(default=None, max_length=200)


class ReplyCooldown(SQLModel, table=True):
    """An auto-reply trigger's last answer in its campaign's group: the next message holding
    the trigger is answered only when its `occurred_at` reaches `next_at`."""

    __tablename__ = "campaigns_reply_cooldown"

    campaign_id: str = Field(primary_key=True, max_length=32)
    trigger: int = Field(primary_key=True)
    replied_at: datetime = utc_column()
    next_at: datetime = utc_column()


class ProcessedEvent(SQLModel, table=True):
    """An event whose effects are committed; written in the same transaction as the effects."""

    __tablename__ = "campaigns_processed_event"

    source: str = Field(primary_key=True, max_length=MAX_ID)
    event_id: str = Field(primary_key=True, max_length=MAX_ID)
    processed_at: datetime = utc_column(index=True)


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
    created_at: datetime = utc_column()


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
    created_at: datetime = utc_column()


class Vote(SQLModel, table=True):
    """A member's vote in a poll. `slot` is 0 in a single-choice poll (one row per member,
    the newest vote by `voted_at` wins) and the option number in a multiple-choice one."""

    __tablename__ = "campaigns_vote"

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    slot: int = Field(primary_key=True)
    option: int
    voted_at: datetime = utc_column()
    message_id: str = Field(max_length=MAX_ID)


class FeedbackItem(SQLModel, table=True):
    """A tagged message collected by a feedback campaign, with its triage status."""

    __tablename__ = "campaigns_feedback"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "message_id", name="uq_campaigns_feedback_message"),
        sa.Index("ix_campaigns_feedback_status", "campaign_id", "status", "id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    campaign_id: str = Field(max_length=32)
    group_id: str = Field(max_length=MAX_ID)
    member_id: str = Field(max_length=MAX_ID)
    message_id: str = Field(max_length=MAX_ID)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    category: str | None = Field(default=None, max_length=32)
    status: str = Field(default="new", max_length=16)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class Invitee(SQLModel, table=True):
    """A member an invite campaign counts (their first invited join in its window), settled by
    the scheduler at `due_at`: `outcome` granted, left or cancelled."""

    __tablename__ = "campaigns_invitee"
    __table_args__ = (sa.Index("ix_campaigns_invitee_due", "settled_at", "due_at"),)

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    group_id: str = Field(max_length=MAX_ID, index=True)
    inviter_id: str = Field(max_length=MAX_ID)
    joined_at: datetime = utc_column()
    due_at: datetime = utc_column()
    left_at: datetime | None = utc_column(nullable=True)
    outcome: str | None = Field(default=None, max_length=16)
    settled_at: datetime | None = utc_column(nullable=True)


class Exclusion(SQLModel, table=True):
    """Why a member may not win a lottery or vote in a poll: a moderation `mute`, `kick` or
    `ban` during the campaign, or `manual` (an operator). One row per cause."""

    __tablename__ = "campaigns_exclusion"
    __table_args__ = (sa.Index("ix_campaigns_exclusion_member", "group_id", "member_id"),)

    campaign_id: str = Field(primary_key=True, max_length=32)
    member_id: str = Field(primary_key=True, max_length=MAX_ID)
    cause: str = Field(primary_key=True, max_length=16)
    id: str = Field(max_length=32, unique=True)
    group_id: str = Field(max_length=MAX_ID)
    reason: str = Field(default="", max_length=1000)
    by: str = Field(default="", max_length=MAX_ID)
    created_at: datetime = utc_column()


class Outbox(OutboxRecord, table=True):
    """The campaigns outbox (the kernel's columns). `message_id` is unique here: a
    notification's id is derived from its step, so a step can never be queued twice."""

    __tablename__ = "campaigns_outbox"
    __table_args__ = (sa.Index("ix_campaigns_outbox_pending", "published_at", "seq"),)

    message_id: str = Field(max_length=200, unique=True)
    key: str = Field(max_length=MAX_ID)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
