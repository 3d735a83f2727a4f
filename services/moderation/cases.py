"""Cases: one per judged event, its actions queued in the outbox in the same transaction.

Service functions: they add and flush, never commit; the route or the consumer's
batch handler commits (and then wakes the outbox relay or publishes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from services.common.contracts.events import Event, MessageCreated
from services.common.db import keyset_page, utcnow
from services.common.errors import Conflict, NotFound
from services.moderation.decisions import Grounds, case_actions, queue_actions
from services.moderation.models import Case, CaseAction
from services.moderation.sources import latest_source
from services.moderation.specs import PolicySpec, Verdict


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict on an event, with the policy of its group."""

    event: Event
    verdict: Verdict
    policy: PolicySpec


def _message_id(event: Event) -> str | None:
    return event.data.message_id if isinstance(event, MessageCreated) else None


def _new_case(decision: Decision) -> Case:
    event, verdict = decision.event, decision.verdict
    shadow = not verdict.matched
    matches = verdict.shadow_matched if shadow else verdict.matched
    return Case(
        group_id=event.group_id,
        member_id=event.member_id,
        event_source=event.source,
        event_id=event.id,
        event_type=event.type,
        message_id=_message_id(event),
        action=verdict.shadow_action if shadow else verdict.action,
        mute_seconds=None if shadow else verdict.mute_seconds,
        rule_ids=[m.rule_id for m in matches],
        shadow_rule_ids=[] if shadow else [m.rule_id for m in verdict.shadow_matched],
        evidence={m.rule_id: m.evidence for m in (*verdict.matched, *verdict.shadow_matched)},
        shadow=shadow,
        strike=not shadow and verdict.strike,
        occurred_at=event.occurred_at,
    )


def _judged_before(
    session: Session, decisions: Sequence[Decision]
) -> set[tuple[str, str | None, str | None]]:
    event_ids = {d.event.id for d in decisions}
    rows = session.exec(
        select(Case.group_id, Case.event_source, Case.event_id).where(
            col(Case.event_id).in_(event_ids)
        )
    )
    return {(g, s, e) for g, s, e in rows}


def _grounds(decision: Decision, case: Case) -> Grounds:
    event, matched = decision.event, decision.verdict.matched
    strongest = next(m for m in matched if m.action == case.action)
    message = event if isinstance(event, MessageCreated) else None
    name = getattr(event.data, "display_name", None)
    return Grounds(
        reason="; ".join(f"{m.kind}: {m.evidence}" for m in matched),
        label=strongest.name or strongest.kind,
        rule_id=strongest.rule_id,
        source=event.source,
        display_name=name if isinstance(name, str) else None,
        message_at=message.occurred_at if message else None,
    )


def record_decisions(*, session: Session, decisions: list[Decision], topic: str) -> list[Case]:
    """Add a case (and queue its actions for `topic`) per decision on an event not judged before."""
    if not decisions:
        return []
    existing = _judged_before(session, decisions)
    created: list[Case] = []
    for decision in decisions:
        event = decision.event
        event_key = (event.group_id, event.source, event.id)
        if event_key in existing:
            continue
        existing.add(event_key)
        case = _new_case(decision)
        session.add(case)
        created.append(case)
        if not case.shadow and case.action is not None:
            actions = case_actions(
                session,
                case,
                policy=decision.policy,
                grounds=_grounds(decision, case),
                until=event.occurred_at,
            )
            queue_actions(session, actions, topic)
    session.flush()
    return created


def list_cases(
    *, session: Session, group_id: str, member_id: str | None, limit: int, cursor: str | None
) -> tuple[list[Case], str | None]:
    """Return a page of the group's cases, newest first, and the next cursor."""
    query = select(Case).where(Case.group_id == group_id)
    if member_id is not None:
        query = query.where(Case.member_id == member_id)
    return keyset_page(session, query, Case.id, limit=limit, cursor=cursor, descending=True)


def get_case(*, session: Session, group_id: str, case_id: str) -> Case:
    """Return the group's case with this id; raise NotFound."""
    case = session.get(Case, case_id)
    if case is None or case.group_id != group_id:
        raise NotFound("case not found")
    return case


def _running(action: CaseAction, now: datetime) -> bool:
    if action.duration_seconds is None:
        return action.action == "ban"
    return action.created_at + timedelta(seconds=action.duration_seconds) > now


def _lift(action: CaseAction, now: datetime, source: str | None) -> CaseAction:
    return CaseAction(
        id=f"{action.id}-lift",
        case_id=action.case_id,
        group_id=action.group_id,
        source=source or action.source,
        member_id=action.member_id,
        event_id=action.event_id,
        message_id=action.message_id,
        action="unmute" if action.action == "mute" else "unban",
        rule_id=action.rule_id,
        reason="case reversed on appeal",
        created_at=now,
    )


def reverse_case(*, session: Session, group_id: str, case_id: str, topic: str) -> Case:
    """Mark the case reversed (its strike stops counting); queue unmute/unban if running."""
    case = get_case(session=session, group_id=group_id, case_id=case_id)
    now = utcnow()
    # A conditional update, so two concurrent reversals cannot both win.
    result = session.execute(
        update(Case)
        .where(col(Case.id) == case_id, col(Case.reversed).is_(False))
        .values(reversed=True, reversed_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("case already reversed")
    actions = session.exec(
        select(CaseAction).where(
            CaseAction.case_id == case_id, col(CaseAction.action).in_(["mute", "ban"])
        )
    ).all()
    session.refresh(case)
    source = latest_source(session, group_id)
    queue_actions(session, [_lift(a, now, source) for a in actions if _running(a, now)], topic)
    session.flush()
    return case
