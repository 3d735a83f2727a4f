"""Moderation tables and API shapes: rules, group policies, cases, their actions, the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import field_validator
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import class_mapper
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from services.common.contracts.actions import ModerationAction
from services.common.db import UTCDateTime, new_id, utc_column
from services.common.outbox import OutboxRecord
from services.moderation.membership_models import (
    JoinRequestPolicy,
    ListName,
    VerificationPolicy,
)
from services.moderation.notices import Notices
from services.moderation.params import ReportsPolicy, RuleKind

Action = Literal["flag", "delete", "warn", "mute", "kick", "ban"]
Row = TypeVar("Row", bound=SQLModel)
Mode = Literal["enforce", "shadow"]

MAX_MUTE_SECONDS = 366 * 86400
DEFAULT_MUTE_SECONDS = 600


# --- rules --------------------------------------------------------------------------

NAME_DOC = "Shown to operators, and as `{reason}` in notices"
PARAMS_DOC = "What the rule looks for; its fields depend on `kind`"
ACTION_DOC = "What a match does to the member (a `warn` adds a strike)"
MUTE_SECONDS_DOC = "For `mute`: how long (600 when absent)"
MODE_DOC = "`shadow`: decisions are recorded as cases and counted, nothing is enforced"
ENABLED_DOC = "A disabled rule is kept but not evaluated"
DELETE_MESSAGE_DOC = (
    "A rule that judges a message also deletes it (a `delete` action published before the "
    "rule's own); false keeps the message"
)


class RuleBase(SQLModel):
    name: str = Field(min_length=1, max_length=200, description=NAME_DOC)
    kind: RuleKind = Field(sa_type=String(32))
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, description=PARAMS_DOC)
    action: Action = Field(sa_type=String(16), description=ACTION_DOC)
    mute_seconds: int | None = Field(
        default=None, ge=1, le=MAX_MUTE_SECONDS, description=MUTE_SECONDS_DOC
    )
    mode: Mode = Field(default="enforce", sa_type=String(16), description=MODE_DOC)
    enabled: bool = Field(default=True, description=ENABLED_DOC)
    delete_message: bool = Field(default=True, description=DELETE_MESSAGE_DOC)


class Rule(RuleBase, table=True):
    __tablename__ = "moderation_rule"
    __table_args__ = (Index("ix_moderation_rule_group", "group_id", "id"),)

    id: str = Field(default_factory=lambda: new_id("rule_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    created_at: datetime = utc_column(default_now=True)
    updated_at: datetime = utc_column(default_now=True)


class RulePublic(RuleBase):
    id: str
    created_at: datetime
    updated_at: datetime


class RulesPublic(SQLModel):
    rules: list[RulePublic]
    next_cursor: str | None


# --- policy -------------------------------------------------------------------------


class LadderStep(SQLModel):
    strikes: int = Field(ge=1, le=1000)
    action: Action
    mute_seconds: int | None = Field(default=None, ge=1, le=MAX_MUTE_SECONDS)


class PolicyBase(SQLModel):
    strike_window_days: int = Field(default=30, ge=1, le=3650)
    ladder: list[LadderStep] = Field(default_factory=list, max_length=50, sa_type=JSON)
    exempt_members: list[str] = Field(default_factory=list, max_length=10_000, sa_type=JSON)
    notices: Notices = Field(default_factory=Notices, sa_type=JSON)
    reports: ReportsPolicy | None = Field(
        default=None, sa_type=JSON, description="Member reports (举报); null: off"
    )
    join_requests: JoinRequestPolicy | None = Field(
        default=None, sa_type=JSON, description="How join requests are answered; null: manual"
    )
    verification: VerificationPolicy | None = Field(
        default=None, sa_type=JSON, description="Newcomer verification (入群验证); null: off"
    )
    blocklists: list[ListName] = Field(
        default_factory=list, max_length=50, sa_type=JSON, description="Subscribed blocklists"
    )
    share_bans_to: ListName | None = Field(
        default=None, description="A blocklist every ban of this group is added to"
    )

    @field_validator("ladder")
    @classmethod
    def _distinct_steps(cls, ladder: list[LadderStep]) -> list[LadderStep]:
        counts = [step.strikes for step in ladder]
        if len(set(counts)) != len(counts):
            raise ValueError("two ladder steps have the same number of strikes")
        return sorted(ladder, key=lambda step: step.strikes)

    @field_validator("exempt_members")
    @classmethod
    def _member_ids(cls, members: list[str]) -> list[str]:
        if any(not 1 <= len(m) <= 256 for m in members):
            raise ValueError("member ids are 1 to 256 characters")
        return sorted(set(members))


POLICY_EXAMPLE: dict[str, Any] = {
    "strike_window_days": 30,
    "ladder": [
        {"strikes": 2, "action": "mute", "mute_seconds": 600},
        {"strikes": 3, "action": "kick"},
    ],
    "exempt_members": ["telegram:123456789"],
    "notices": {
        "warn": "{member} 违反群规：{reason}（第 {strikes} 次）",
        "mute": "{member} 因 {reason} 被禁言 {duration}",
        "kick": "{member} 因 {reason} 被移出本群",
    },
}


class PolicyUpdate(PolicyBase):
    """The whole policy of a group (PUT replaces it)."""

    model_config = SQLModelConfig(json_schema_extra={"examples": [POLICY_EXAMPLE]})


class Policy(SQLModel, table=True):
    __tablename__ = "moderation_policy"

    group_id: str = Field(primary_key=True, max_length=256)
    strike_window_days: int = 30
    ladder: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    exempt_members: list[str] = Field(default_factory=list, sa_type=JSON)
    notices: dict[str, str | None] = Field(default_factory=dict, sa_type=JSON)
    reports: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    join_requests: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    verification: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    blocklists: list[str] = Field(default_factory=list, sa_type=JSON)
    share_bans_to: str | None = Field(default=None, max_length=64)
    updated_at: datetime = utc_column(default_now=True)


class PolicyPublic(PolicyBase):
    group_id: str


# --- cases and actions --------------------------------------------------------------


class Case(SQLModel, table=True):
    """One decision about one event; (group, source, event id) is unique so replays add none.

    A manual case (`by` = the operator's token name) has no event: `event_id` is null and
    `event_source` the group's latest source when the case was made.
    """

    __tablename__ = "moderation_case"
    __table_args__ = (
        UniqueConstraint("group_id", "event_source", "event_id", name="uq_moderation_case_event"),
        Index("ix_moderation_case_group", "group_id", "id"),
        Index("ix_moderation_case_member", "group_id", "member_id", "occurred_at"),
        Index("ix_moderation_case_action", "group_id", "action", "id"),
    )

    id: str = Field(default_factory=lambda: new_id("case_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    member_id: str = Field(max_length=256)
    event_source: str | None = Field(default=None, max_length=256)
    event_id: str | None = Field(default=None, max_length=256)
    event_type: str = Field(max_length=32)
    message_id: str | None = Field(default=None, max_length=256)
    action: str | None = Field(default=None, max_length=16)
    mute_seconds: int | None = None
    rule_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    rule_names: list[str] = Field(default_factory=list, sa_type=JSON)
    shadow_rule_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    evidence: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    burst_message_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    reporters: list[str] = Field(default_factory=list, sa_type=JSON)
    shadow: bool = False
    strike: bool = False
    escalation: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    reversed: bool = False
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversed_by: str | None = Field(default=None, max_length=200)
    reversal_reason: str | None = Field(default=None, max_length=1000)
    by: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = utc_column()
    created_at: datetime = utc_column(default_now=True)


def built(model: type[Row], **columns: Any) -> Row:
    """A new row object (transient: `session.add` makes it pending) from the value of every
    column, made as the ORM makes the rows it loads. The hot paths make cases and actions
    by the hundred per second: the model's constructor cost 75-110 µs each (an
    instrumentation event per attribute, and pydantic's `get_default`, which inspects a
    default factory's signature on every call, for each column left out) — a fifth of the
    consumer's CPU per judged event; this costs 4. Nothing is validated or defaulted: the
    caller gives every column (the values are the ones it would have passed)."""
    row = class_mapper(model).class_manager.new_instance()
    row.__dict__.update(columns)
    return row  # type: ignore[no-any-return]


class Enforcement(SQLModel):
    """What delivery answered for the case's last action (its latest receipt)."""

    outcome: str
    detail: str
    updated_at: datetime


class CasePublic(SQLModel):
    id: str
    group_id: str
    member_id: str
    event_id: str | None
    message_id: str | None
    action: str | None
    rule_ids: list[str]
    rule_names: list[str] = Field(
        default_factory=list, description="The names the rules had when the case was made"
    )
    shadow: bool
    reversed: bool
    created_at: datetime
    mute_seconds: int | None
    shadow_rule_ids: list[str]
    evidence: dict[str, str]
    strike: bool
    escalation: dict[str, Any] | None
    occurred_at: datetime
    reversed_at: datetime | None
    by: str | None = Field(default=None, description="The operator of a manual case (token name)")
    reporters: list[str] = Field(default_factory=list, description="Members who reported it")
    burst_message_ids: list[str] = Field(
        default_factory=list,
        description="Later messages of the same burst, recorded here instead of a second "
        "action on the member (each still deleted when the rule deletes)",
    )
    reversed_by: str | None = Field(default=None, description="Who reversed it (token name)")
    reversal_reason: str | None = Field(default=None, description="Why it was reversed")
    enforcement: Enforcement | None = Field(
        default=None, description="Null while delivery has not answered the case's last action"
    )


class CasesPublic(SQLModel):
    cases: list[CasePublic]
    next_cursor: str | None


class CaseAction(SQLModel, table=True):
    """An action a case took (its own, its ladder step, a lift on reversal), kept with the case.

    What goes on the topic is queued in the outbox in the same transaction.
    """

    __tablename__ = "moderation_action"

    id: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(max_length=40, index=True)
    group_id: str = Field(max_length=256)
    source: str | None = Field(default=None, max_length=256)
    member_id: str = Field(max_length=256)
    event_id: str | None = Field(default=None, max_length=256)
    message_id: str | None = Field(default=None, max_length=256)
    action: str = Field(max_length=16)
    duration_seconds: int | None = None
    rule_id: str | None = Field(default=None, max_length=40)
    reason: str = Field(default="", max_length=1000)
    text: str | None = Field(default=None, max_length=4000)
    mentions: list[str] = Field(default_factory=list, sa_type=JSON)
    mention_names: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    request_ref: str | None = Field(default=None, max_length=256)
    message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = utc_column(default_now=True)

    def contract(self) -> ModerationAction:
        """Return the record published on moderation.actions.v1."""
        return ModerationAction.model_validate(self, from_attributes=True)


class CaseFilters(SQLModel):
    """What `GET …/cases` narrows the list to (each optional)."""

    member_id: str | None = None
    action: str | None = None
    rule_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class ReverseRequest(SQLModel):
    """Why an appeal is upheld (optional)."""

    reason: str | None = Field(default=None, max_length=1000, description="Kept on the case")


class Lift(SQLModel):
    """An action a reversal queued to lift a running mute or ban."""

    id: str
    action: str
    member_id: str


class ReversalPublic(CasePublic):
    lifts: list[Lift] = Field(
        default_factory=list, description="The unmute/unban actions queued (none when nothing ran)"
    )


# --- member reports -----------------------------------------------------------------


class Report(SQLModel, table=True):
    """Reports of one message: its author and whether the threshold was reached."""

    __tablename__ = "moderation_report"
    __table_args__ = (
        UniqueConstraint("group_id", "message_id", name="uq_moderation_report_message"),
        Index("ix_moderation_report_status", "group_id", "status", "id"),
    )

    id: str = Field(default_factory=lambda: new_id("rep_"), primary_key=True, max_length=40)
    group_id: str = Field(max_length=256)
    message_id: str = Field(max_length=256)
    member_id: str = Field(max_length=256)
    message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="open", max_length=16)
    case_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_column(default_now=True)
    actioned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportVote(SQLModel, table=True):
    """One member's report of one message: the primary key counts it once."""

    __tablename__ = "moderation_report_vote"

    group_id: str = Field(primary_key=True, max_length=256)
    message_id: str = Field(primary_key=True, max_length=256)
    reporter_id: str = Field(primary_key=True, max_length=256)
    event_id: str = Field(max_length=256)
    created_at: datetime = utc_column(default_now=True)


ReportStatus = Literal["open", "actioned"]


class ReportPublic(SQLModel):
    id: str
    group_id: str
    message_id: str
    member_id: str = Field(description="The reported message's author")
    reporters: list[str] = Field(description="Who reported it, in report order")
    status: ReportStatus
    case_id: str | None = Field(description="The case opened at the threshold")
    created_at: datetime


class ReportsPublic(SQLModel):
    reports: list[ReportPublic]
    next_cursor: str | None


class GroupSource(SQLModel, table=True):
    """The webhook source of each group's latest event, kept by the consumer (manual actions
    and reversals are published through it)."""

    __tablename__ = "moderation_group_source"

    group_id: str = Field(primary_key=True, max_length=256)
    source: str = Field(max_length=256)
    updated_at: datetime = utc_column(default_now=True)


class Receipt(SQLModel, table=True):
    """The latest delivery receipt of each of moderation's actions (`ref_id` = the action id)."""

    __tablename__ = "moderation_receipt"

    ref_id: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(max_length=40, index=True)
    receipt_id: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    detail: str = Field(default="", max_length=2000)
    attempts: int = 0
    receipt_at: datetime = utc_column()


class ModerationOutbox(OutboxRecord, table=True):
    """Actions waiting for Kafka's acknowledgement (the kernel outbox, moderation's table)."""

    __tablename__ = "moderation_outbox"
