"""rules/test: judge a sample message or member event the way the consumer would, with no effect.

Nothing is stored, counted or published: the member's windows and join time are read
from Redis as they stand, and the strikes from the database.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session

from services.common.contracts.events import Attachment, MessageKind
from services.common.db import utcnow
from services.moderation.ladder import count_strikes, escalation
from services.moderation.rulebook import Rulebook
from services.moderation.specs import Subject
from services.moderation.tracking import Tracker

SAMPLE_EXAMPLE: dict[str, Any] = {
    "type": "message.created",
    "member_id": "telegram:123456789",
    "text": "加 微 信 领 福 利",
    "kind": "text",
}


class SampleEvent(BaseModel):
    """A message (or a join/rename) to judge; nothing is stored, counted or published."""

    model_config = ConfigDict(json_schema_extra={"examples": [SAMPLE_EXAMPLE]})

    type: Literal["message.created", "member.joined", "member.updated"] = Field(
        default="message.created",
        description="`member.joined` / `member.updated` check `display_name` rules",
    )
    member_id: str = Field(
        default="test:member",
        min_length=1,
        max_length=256,
        description="Whose windows, join time and strikes to read",
    )
    text: str = Field(default="", max_length=65536)
    kind: MessageKind = "text"
    mentions: list[str] = Field(
        default_factory=list, max_length=1000, description="Member ids mentioned"
    )
    display_name: str | None = Field(
        default=None, max_length=256, description="Given: display-name rules check it"
    )
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    joined_at: AwareDatetime | None = Field(
        default=None, description="Join time to assume (default: what moderation has seen)"
    )


class MatchPublic(BaseModel):
    rule_id: str
    kind: str
    evidence: str


class TestResult(BaseModel):
    matched: list[MatchPublic]
    action: str | None
    deletes_message: bool = Field(
        description="The message would be deleted too (an enforced match's `delete_message`)"
    )
    shadow_matched: list[MatchPublic]
    exempt: bool
    strike: bool
    strikes: int
    escalation: dict[str, Any] | None


def _subject(sample: SampleEvent) -> Subject:
    return Subject(
        type=sample.type,
        member_id=sample.member_id,
        occurred_at=utcnow(),
        text=sample.text,
        kind=sample.kind,
        attachment_kinds=tuple(a.kind for a in sample.attachments),
        images=tuple(c for a in sample.attachments if (c := a.content())),
        mentions=len(set(sample.mentions)),
        display_name=sample.display_name,
        check_name=sample.display_name is not None,
    )


def judge_sample(
    *, session: Session, tracker: Tracker, rulebook: Rulebook, group_id: str, sample: SampleEvent
) -> TestResult:
    """Judge the sample with the group's rulebook and say what the ladder would add."""
    subject = _subject(sample)
    context = tracker.peek(
        rulebook=rulebook, group_id=group_id, subject=subject, message_text=sample.text
    )
    if sample.joined_at is not None:
        context.joined_at = sample.joined_at
    verdict = rulebook.evaluate(subject, context)
    strikes = count_strikes(
        session=session,
        group_id=group_id,
        member_id=sample.member_id,
        until=subject.occurred_at,
        window_days=rulebook.policy.strike_window_days,
    ) + int(verdict.strike)
    step = (
        escalation(
            policy=rulebook.policy,
            strikes=strikes,
            action=verdict.action,
            mute_seconds=verdict.mute_seconds,
        )
        if verdict.strike
        else None
    )
    return TestResult(
        matched=[MatchPublic(**m.as_dict()) for m in verdict.matched],
        action=verdict.action,
        deletes_message=sample.type == "message.created" and verdict.deletes_message,
        shadow_matched=[MatchPublic(**m.as_dict()) for m in verdict.shadow_matched],
        exempt=verdict.exempt,
        strike=verdict.strike,
        strikes=strikes,
        escalation=step.as_dict() if step else None,
    )
