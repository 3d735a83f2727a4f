"""What a case does: its own action, the ladder step its strike reaches, their notices.

Rule cases (from the consumer), report cases and manual cases all come through
`case_actions`, so a manual warn adds a strike and climbs the ladder like a rule's. A
case that judged a message and deletes it gets a `delete` action of its own, queued
before the case's action (a case whose action is `delete` deletes once). A member a rule
case muted, kicked or banned is not actioned again for the same burst: `Restriction`
says which later messages that case covers (pure), and the case records them instead.
Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from services.common.db import utcnow
from services.common.outbox import Outgoing, enqueue
from services.moderation.blocklists import share_bans
from services.moderation.ladder import count_strikes, escalation
from services.moderation.models import Case, CaseAction, ModerationOutbox, built
from services.moderation.notices import NoticeFacts, notice_for, template_for
from services.moderation.specs import ACTION_RANK, PolicySpec

TIMED = ("mute", "ban")
RESTRICTING = ("mute", "kick", "ban")
BURST_SECONDS = 60
"""How long after the message that got a member muted, kicked or banned their further
messages count as the same burst (at most the mute's own length): they were on their way
before the platform carried the action out."""
DELETE_SUFFIX = "-delete"


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
    notice = notice_for(policy.notices, action, facts)
    return built(
        CaseAction,
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
        request_ref=None,
        message_at=grounds.message_at if case.message_id else None,
        created_at=case.created_at,
    )


def delete_action(
    case: Case,
    grounds: Grounds,
    *,
    id: str,
    message_id: str,
    event_id: str | None,
    message_at: datetime | None,
) -> CaseAction:
    """The deletion of a message the case judged (its own, or a later one of its burst)."""
    deletion = new_action(
        case, grounds, id=id, action="delete", duration=None, reason=grounds.reason, strikes=0,
        policy=PolicySpec(),  # a deletion posts no notice
    )  # fmt: skip
    deletion.message_id, deletion.event_id = message_id, event_id
    deletion.message_at = message_at
    deletion.created_at = utcnow()
    return deletion


def is_companion_delete(action_id: str, case_id: str) -> bool:
    """Tell whether an action is a deletion accompanying the case's own action."""
    return action_id.startswith(case_id + DELETE_SUFFIX)


def queue_actions(session: Session, actions: Sequence[CaseAction], topic: str) -> None:
    """Keep the actions with their case and queue their records for the topic."""
    session.add_all(actions)
    share_bans(session, actions)
    enqueue(
        session,
        ModerationOutbox,
        [Outgoing(topic=topic, key=a.group_id, payload=a.contract()) for a in actions],
    )


def _needs_strikes(case: Case, policy: PolicySpec) -> bool:
    template = template_for(policy.notices, case.action or "") or ""
    return case.strike or "{strikes}" in template


def case_actions(
    session: Session,
    case: Case,
    *,
    policy: PolicySpec,
    grounds: Grounds,
    until: datetime,
    deletes_message: bool = False,
) -> list[CaseAction]:
    """The case's own action and, when its strike climbs the ladder, the step's; first the
    deletion of the judged message when the case deletes it and its action is not `delete`."""
    assert case.action is not None
    deletion: list[CaseAction] = []
    if deletes_message and case.message_id is not None and case.action != "delete":
        deletion = [
            delete_action(
                case,
                grounds,
                id=case.id + DELETE_SUFFIX,
                message_id=case.message_id,
                event_id=case.event_id,
                message_at=grounds.message_at,
            )
        ]
        deletion[0].created_at = case.created_at
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
        return [*deletion, own]
    step = escalation(
        policy=policy, strikes=strikes, action=case.action, mute_seconds=case.mute_seconds
    )
    if step is None:
        return [*deletion, own]
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
    return [*deletion, own, ladder]


@dataclass(frozen=True, slots=True)
class Restriction:
    """A rule case that muted, kicked or banned its member, and the burst it covers."""

    case_id: str
    action: str
    started_at: datetime
    until: datetime

    def covers(self, *, occurred_at: datetime, action: str) -> bool:
        """Tell whether a message judged `action` at `occurred_at` is part of this burst
        (a stronger action than the restriction's is taken anyway)."""
        return (
            self.started_at <= occurred_at < self.until
            and ACTION_RANK[action] <= ACTION_RANK[self.action]
        )


def restriction_of(case: Case) -> Restriction | None:
    """The restriction an enforced, unreversed rule case put on its member, if any: the
    stronger of its action and its ladder step."""
    if case.shadow or case.reversed or not case.rule_ids:
        return None
    taken = [(case.action, case.mute_seconds)]
    if case.escalation:
        taken.append((case.escalation.get("action"), case.escalation.get("mute_seconds")))
    held = [(a, s) for a, s in taken if a in RESTRICTING]
    if not held:
        return None
    action, seconds = max(held, key=lambda step: ACTION_RANK[str(step[0])])
    window = min(seconds, BURST_SECONDS) if action == "mute" and seconds else BURST_SECONDS
    return Restriction(
        case_id=case.id,
        action=str(action),
        started_at=case.occurred_at,
        until=case.occurred_at + timedelta(seconds=window),
    )
