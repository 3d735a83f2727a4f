"""Manual actions: an operator acts on a member through the API; each is a case.

The case has no event and no rules (`rule_ids: []`), `by` = the token's name, and is
published like any other (outbox, the group's latest source). A manual warn adds a
strike and can climb the ladder. Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlmodel import Session

from services.common.db import utcnow
from services.common.errors import Conflict
from services.moderation.decisions import Grounds, case_actions, queue_actions
from services.moderation.models import MAX_MUTE_SECONDS, Case, PolicyPublic
from services.moderation.rulebook_cache import policy_spec
from services.moderation.sources import latest_source

ManualActionName = Literal["delete", "warn", "mute", "unmute", "kick", "ban", "unban"]
LIFTS = frozenset({"unmute", "unban"})
DEFAULT_REASON = "manual action"


class ManualAction(BaseModel):
    """An operator's action on a member."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "member_id": "telegram:123456789",
                    "action": "mute",
                    "message_id": "4711",
                    "duration_seconds": 3600,
                    "reason": "刷屏",
                }
            ]
        },
    )

    member_id: str = Field(min_length=1, max_length=256)
    action: ManualActionName
    message_id: str | None = Field(
        default=None, min_length=1, max_length=256, validate_default=True,
        description="Required for delete",
    )  # fmt: skip
    duration_seconds: int | None = Field(
        default=None, ge=1, le=MAX_MUTE_SECONDS, validate_default=True,
        description="Required for mute; ban: timed",
    )  # fmt: skip
    reason: str = Field(default=DEFAULT_REASON, max_length=1000, description="Shown as {reason}")

    # Field validators (not a model validator), so the 422 names the missing field.
    @field_validator("message_id")
    @classmethod
    def _delete_names_message(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("action") == "delete":
            raise ValueError("a delete needs message_id")
        return value

    @field_validator("duration_seconds")
    @classmethod
    def _mute_has_duration(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None and info.data.get("action") == "mute":
            raise ValueError("a mute needs duration_seconds")
        return value


def act(
    *,
    session: Session,
    group_id: str,
    body: ManualAction,
    by: str,
    policy: PolicyPublic,
    display_name: str | None,
    topic: str,
) -> Case:
    """Open the case and queue its actions; Conflict when the member is exempt."""
    if body.member_id in policy.exempt_members and body.action not in LIFTS:
        raise Conflict("member is exempt")
    source = latest_source(session, group_id)
    now = utcnow()
    reason = body.reason or DEFAULT_REASON
    case = Case(
        group_id=group_id,
        member_id=body.member_id,
        event_source=source,
        event_type="manual",
        message_id=body.message_id,
        action=body.action,
        mute_seconds=body.duration_seconds if body.action in ("mute", "ban") else None,
        strike=body.action == "warn",
        by=by[:200],
        occurred_at=now,
        created_at=now,
    )
    session.add(case)
    grounds = Grounds(
        reason=reason, label=reason, rule_id=None, source=source, display_name=display_name
    )
    actions = case_actions(session, case, policy=policy_spec(policy), grounds=grounds, until=now)
    queue_actions(session, actions, topic)
    session.flush()
    return case
