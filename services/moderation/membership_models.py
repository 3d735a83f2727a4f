"""Membership tables and API shapes: the roster, join requests, verification, blocklists,
clean-ups, and the policy parts that switch them on.

The tables are on the same SQLModel metadata as models.py (migration 0006 creates them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from services.common.db import UTCDateTime, new_id, utc_column

ListName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^/\x00-\x1f\x7f]+$")
]
# Member ids are REST path segments (DELETE …/entries/{member_id}), as in the events.
MemberId = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^/\x00-\x1f\x7f]+$")
]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=100)]

MAX_INACTIVE_DAYS = 400  # as far back as metrics' dormant list looks
MAX_PER_MINUTE = 6000


# --- policy parts (stored as JSON in moderation_policy) -------------------------------


class JoinRequestPolicy(SQLModel):
    """How join requests are answered: `manual` waits for an operator; `auto` approves an
    answer holding one of `answer_keywords` (folded like keyword rules) and declines the
    rest (with no keywords, approves everyone not blocklisted)."""

    model_config = SQLModelConfig(extra="forbid")

    mode: Literal["manual", "auto"] = "manual"
    answer_keywords: list[Keyword] = Field(default_factory=list, max_length=1000)


class VerificationPolicy(SQLModel):
    """Newcomer verification: mute on join until the member sends their 4-digit code."""

    model_config = SQLModelConfig(extra="forbid")

    enabled: bool = True
    within_seconds: int = Field(default=300, ge=10, le=7 * 86400)
    on_fail: Literal["kick", "ban"] = "kick"


# --- the roster: what moderation knows of each member --------------------------------


class MemberRecord(SQLModel, table=True):
    """One member of one group as the events told it (max/min merges: replays change nothing).

    A current member: seen joining or speaking, and no leave after their latest join or
    message — the rule metrics uses for its dormant list.
    """

    __tablename__ = "moderation_member"

    group_id: str = Field(primary_key=True, max_length=256)
    member_id: str = Field(primary_key=True, max_length=256)
    display_name: str | None = Field(default=None, max_length=256)
    named_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_active_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- join requests ------------------------------------------------------------------


class JoinRequest(SQLModel, table=True):
    """A `member.join_requested` event; (group, source, event id) unique so replays add none."""

    __tablename__ = "moderation_join_request"
    __table_args__ = (
        UniqueConstraint("group_id", "source", "event_id", name="uq_moderation_join_request_event"),
        Index("ix_moderation_join_request_status", "group_id", "status", "id"),
    )

    id: str = Field(default_factory=lambda: new_id("join_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    member_id: str = Field(max_length=256)
    display_name: str | None = Field(default=None, max_length=256)
    answer: str = Field(default="", max_length=1024)
    request_ref: str = Field(max_length=256)
    channel: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=256)
    event_id: str = Field(max_length=256)
    status: str = Field(default="pending", max_length=16)
    case_id: str | None = Field(default=None, max_length=40)
    decided_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_column(default_now=True)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


JoinRequestStatus = Literal["pending", "approved", "declined"]


class JoinRequestPublic(SQLModel):
    id: str
    group_id: str
    member_id: str
    display_name: str | None
    answer: str
    status: JoinRequestStatus
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None = Field(
        description="The operator's token name, `auto` for the policy, `blocklist` for a list"
    )
    case_id: str | None = Field(description="The case of the decision (null while pending)")


class JoinRequestsPublic(SQLModel):
    join_requests: list[JoinRequestPublic]
    next_cursor: str | None


# --- verification -------------------------------------------------------------------


class Verification(SQLModel, table=True):
    """A newcomer's verification: (group, source, join event id) unique so replays add none.

    `status`: pending → verified (right code in time), failed (no code by the deadline:
    `on_fail` applied by the timer loop) or left (the member left first); every move is a
    conditional update from pending, so the consumer and the timers never both win.
    """

    __tablename__ = "moderation_verification"
    __table_args__ = (
        UniqueConstraint(
            "group_id", "source", "join_event_id", name="uq_moderation_verification_join"
        ),
        Index("ix_moderation_verification_due", "status", "deadline_at"),
        Index("ix_moderation_verification_member", "group_id", "member_id", "status"),
    )

    id: str = Field(default_factory=lambda: new_id("verify_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    member_id: str = Field(max_length=256)
    source: str = Field(max_length=256)
    join_event_id: str = Field(max_length=256)
    code: str = Field(max_length=8)
    status: str = Field(default="pending", max_length=16)
    on_fail: str = Field(max_length=8)
    joined_at: datetime = utc_column()
    deadline_at: datetime = utc_column()
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = utc_column(default_now=True)


# --- blocklists ---------------------------------------------------------------------


class BlocklistCreate(SQLModel):
    model_config = SQLModelConfig(
        extra="forbid", json_schema_extra={"examples": [{"name": "spam"}]}
    )

    name: ListName = Field(description="Groups subscribe with policy `blocklists: [name]`")


class Blocklist(SQLModel, table=True):
    __tablename__ = "moderation_blocklist"

    name: str = Field(primary_key=True, max_length=64)
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_column(default_now=True)


class BlocklistPublic(SQLModel):
    name: str
    created_by: str
    created_at: datetime


class BlocklistsPublic(SQLModel):
    blocklists: list[BlocklistPublic]
    next_cursor: str | None


class EntryCreate(SQLModel):
    model_config = SQLModelConfig(
        extra="forbid",
        json_schema_extra={"examples": [{"member_id": "telegram:987654321", "reason": "广告号"}]},
    )

    member_id: MemberId
    reason: str = Field(default="", max_length=1000)


class BlocklistEntry(SQLModel, table=True):
    """A listed member. `propagated_at` is null until the member was banned in every
    subscribed group they are in (the route does it at once; a ban shared into the list by
    `share_bans_to` is propagated by the timer loop)."""

    __tablename__ = "moderation_blocklist_entry"
    __table_args__ = (
        Index("ix_moderation_blocklist_entry_member", "member_id"),
        Index("ix_moderation_blocklist_entry_pending", "propagated_at"),
    )

    list_name: str = Field(primary_key=True, max_length=64)
    member_id: str = Field(primary_key=True, max_length=256)
    reason: str = Field(default="", max_length=1000)
    added_by: str = Field(max_length=200)
    origin_group_id: str | None = Field(default=None, max_length=256)
    created_at: datetime = utc_column(default_now=True)
    propagated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EntryPublic(SQLModel):
    member_id: str
    reason: str
    created_at: datetime
    added_by: str = Field(description="The token name, or `share:<group>` for a shared ban")


class EntriesPublic(SQLModel):
    entries: list[EntryPublic]
    next_cursor: str | None


class BlocklistHit(SQLModel, table=True):
    """A listed member's join stopped by a list: (group, source, join event id) unique, so a
    replayed join bans once."""

    __tablename__ = "moderation_blocklist_hit"

    group_id: str = Field(primary_key=True, max_length=256)
    source: str = Field(primary_key=True, max_length=256)
    event_id: str = Field(primary_key=True, max_length=256)
    member_id: str = Field(max_length=256)
    list_name: str = Field(max_length=64)
    case_id: str = Field(max_length=40)
    created_at: datetime = utc_column(default_now=True)


# --- lurker clean-ups ---------------------------------------------------------------


class CleanupCreate(SQLModel):
    model_config = SQLModelConfig(
        extra="forbid",
        json_schema_extra={
            "examples": [{"inactive_days": 30, "never_spoke_only": False, "per_minute": 10}]
        },
    )

    inactive_days: int = Field(
        default=30,
        ge=1,
        le=MAX_INACTIVE_DAYS,
        description="Members who joined at least this many days ago, silent on the last N days",
    )
    never_spoke_only: bool = Field(default=False, description="Only members who never spoke")
    per_minute: int = Field(default=10, ge=1, le=MAX_PER_MINUTE, description="Kicks per minute")


CleanupStatus = Literal["preview", "running", "done", "cancelled"]


class Cleanup(SQLModel, table=True):
    """A clean-up: its preview (the members listed in `moderation_cleanup_member`) and its
    progress. The timer loop claims a running one by bumping `version` (conditional update),
    so each member is kicked once across replicas and restarts."""

    __tablename__ = "moderation_cleanup"
    __table_args__ = (
        Index("ix_moderation_cleanup_group", "group_id", "id"),
        Index("ix_moderation_cleanup_due", "status", "next_kick_at"),
    )

    id: str = Field(default_factory=lambda: new_id("cleanup_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    status: str = Field(default="preview", max_length=16)
    inactive_days: int
    never_spoke_only: bool = False
    per_minute: int
    count: int = 0
    kicked: int = 0
    skipped: int = 0
    created_by: str = Field(max_length=200)
    started_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_column(default_now=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_kick_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 0


class CleanupMember(SQLModel, table=True):
    """A member a clean-up listed; `outcome` is null until kicked or skipped (left meanwhile,
    or exempt by then)."""

    __tablename__ = "moderation_cleanup_member"
    __table_args__ = (Index("ix_moderation_cleanup_member_order", "cleanup_id", "position"),)

    cleanup_id: str = Field(primary_key=True, max_length=40)
    member_id: str = Field(primary_key=True, max_length=256)
    position: int
    display_name: str | None = Field(default=None, max_length=256)
    joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_active_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=16)
    case_id: str | None = Field(default=None, max_length=40)


class LurkerPublic(SQLModel):
    member_id: str
    display_name: str | None
    joined_at: datetime | None = Field(description="First join seen (null: before tracking)")
    last_active_at: datetime | None = Field(description="Latest message (null: never spoke)")


class CleanupSummaryPublic(SQLModel):
    """A clean-up without its listed members (as lists show it)."""

    id: str
    group_id: str
    status: CleanupStatus
    inactive_days: int
    never_spoke_only: bool
    per_minute: int
    count: int
    kicked: int
    skipped: int = Field(description="Listed members not kicked: they left, or became exempt")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CleanupPublic(CleanupSummaryPublic):
    members: list[LurkerPublic] = Field(description="The listed members, in kick order")


class CleanupsPublic(SQLModel):
    cleanups: list[CleanupSummaryPublic]
    next_cursor: str | None
