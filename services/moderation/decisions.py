"""What a case does: its own action, the ladder step its strike reaches, their notices.

Rule cases (from the consumer) and manual cases (from the API) both come through
`case_actions`, so a manual warn adds a strike and climbs the ladder like a rule's.
Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from services.common.outbox import Outgoing, enqueue
from services.moderation.ladder import count_strikes, escalation
from services.moderation.models import Case, CaseAction, ModerationOutbox
from services.moderation.notices import NoticeFacts, render, template_for
from services.moderation.specs import PolicySpec

TIMED = ("mute", "ban")


@dataclass(frozen=True, slots=True)
class Grounds:
    """Why a case acts and what its notices say: the record's reason, the `{reason}` label."""

    reason: str
    label: str
    rule_id: str | None
    source: str | None
    display_name: str | None = None
    message_at: datetime | None = None


def new_action(
    case: Case,
    grounds: Grounds,
    *,
    id: str,
    action: str,
    duration: int | None,
    reason: str,
    strikes: int,
    policy: PolicySpec,
) -> CaseAction:
    """One action of the case, with the notice its policy posts with it (if any)."""
    duration = duration if action in TIMED else None
    facts = NoticeFacts(
        member_id=case.member_id,
        display_name=grounds.display_name,
        reason=grounds.label,
        strikes=strikes,
        duration_seconds=duration,
    )
    notice = render(template_for(policy.notices, action), facts)
    return CaseAction(
        id=id,
        case_id=case.id,
        group_id=case.group_id,
        source=grounds.source,
        member_id=case.member_id,
        event_id=case.event_id,
        message_id=case.message_id,
        action=action,
        duration_seconds=duration,
        rule_id=grounds.rule_id,
        reason=reason[:1000],
        text=notice.text[:4000] if notice else None,
        mentions=list(notice.mentions) if notice else [],
        mention_names=dict(notice.mention_names) if notice else {},
        message_at=grounds.message_at if case.message_id else None,
        created_at=case.created_at,
    )


def queue_actions(session: Session, actions: Sequence[CaseAction], topic: str) -> None:
    """Keep the actions with their case and queue their records for the topic."""
    session.add_all(actions)
    enqueue(
        session,
        ModerationOutbox,
        [Outgoing(topic=topic, key=a.group_id, payload=a.contract()) for a in actions],
    )


def _needs_strikes(case: Case, policy: PolicySpec) -> bool:
    template = template_for(policy.notices, case.action or "") or ""
    return case.strike or "{strikes}" in template


def case_actions(
    session: Session, case: Case, *, policy: PolicySpec, grounds: Grounds, until: datetime
) -> list[CaseAction]:
    """The case's own action and, when its strike climbs the ladder, the step's."""
    assert case.action is not None
    strikes = 0
    if _needs_strikes(case, policy):
        session.flush()  # the case's own strike counts
        strikes = count_strikes(
            session=session,
            group_id=case.group_id,
            member_id=case.member_id,
            until=until,
            window_days=policy.strike_window_days,
        )
    own = new_action(
        case,
        grounds,
        id=case.id,
        action=case.action,
        duration=case.mute_seconds,
        reason=grounds.reason,
        strikes=strikes,
        policy=policy,
    )
    if not case.strike:
        return [own]
    step = escalation(
        policy=policy, strikes=strikes, action=case.action, mute_seconds=case.mute_seconds
    )
    if step is None:
        return [own]
    case.escalation = {**step.as_dict(), "strikes_counted": strikes}
    ladder = new_action(
        case,
        grounds,
        id=f"{case.id}-ladder",
        action=step.action,
        duration=step.mute_seconds,
        reason=f"{strikes} strikes in {policy.strike_window_days} days",
        strikes=strikes,
        policy=policy,
    )
    return [own, ladder]
