"""Cases of the membership features: join decisions, verification steps, blocklist bans,
clean-up kicks. Each is a case with one action, queued in the outbox like any other.

Their cases carry no `event_id`: the event a step answers is kept on the feature's own
row (join request, verification, blocklist hit), whose unique key makes a replay add
nothing — and a rule's case on the same event (a display-name rule on a join) stays
possible. Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from services.common.db import utcnow
from services.moderation.decisions import Grounds, new_action, queue_actions
from services.moderation.models import Case
from services.moderation.notices import Notice
from services.moderation.specs import PolicySpec

QUIET = PolicySpec()  # no notices: e.g. clean-up kicks, which would flood the group


@dataclass(frozen=True, slots=True)
class Step:
    """One membership step: who, what, why, through which source."""

    group_id: str
    member_id: str
    action: str
    reason: str
    kind: str
    source: str | None
    by: str | None = None
    duration: int | None = None
    request_ref: str | None = None
    display_name: str | None = None


def open_case(
    session: Session,
    step: Step,
    *,
    policy: PolicySpec,
    topic: str,
    notice: Notice | None = None,
    occurred_at: datetime | None = None,
) -> Case:
    """Add the step's case and queue its action (with the policy's notice, or `notice`)."""
    now = utcnow()
    case = Case(
        group_id=step.group_id,
        member_id=step.member_id,
        event_source=step.source,
        event_type=step.kind,
        action=step.action,
        mute_seconds=step.duration if step.action in ("mute", "ban") else None,
        by=step.by[:200] if step.by else None,
        occurred_at=occurred_at or now,
        created_at=now,
    )
    session.add(case)
    grounds = Grounds(
        reason=step.reason,
        label=step.reason,
        rule_id=None,
        source=step.source,
        display_name=step.display_name,
    )
    action = new_action(
        case,
        grounds,
        id=case.id,
        action=step.action,
        duration=step.duration,
        reason=step.reason,
        strikes=0,
        policy=policy,
    )
    action.request_ref = step.request_ref
    if notice is not None:
        action.text = notice.text[:4000]
        action.mentions = list(notice.mentions)
        action.mention_names = dict(notice.mention_names)
    queue_actions(session, [action], topic)
    session.flush()
    return case
