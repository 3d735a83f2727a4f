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
from services.common.outbox import Outgoing, enqueue
from services.moderation.ladder import count_strikes, escalation
from services.moderation.models import Case, CaseAction, ModerationOutbox
from services.moderation.specs import Match, PolicySpec, Verdict


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


def _action(
    case: Case, *, id: str, action: str, duration: int | None, reason: str, rule_id: str | None
) -> CaseAction:
    return CaseAction(
        id=id,
        case_id=case.id,
        group_id=case.group_id,
        member_id=case.member_id,
        event_id=case.event_id,
        message_id=case.message_id,
        action=action,
        duration_seconds=duration if action in ("mute", "ban") else None,
        rule_id=rule_id,
        reason=reason[:1000],
        created_at=case.created_at,
    )


def _queue(session: Session, actions: Sequence[CaseAction], topic: str) -> None:
    """Keep the actions with their case and queue their records for the topic."""
    session.add_all(actions)
    enqueue(
        session,
        ModerationOutbox,
        [Outgoing(topic=topic, key=a.group_id, payload=a.contract()) for a in actions],
    )


def _judged_before(session: Session, decisions: Sequence[Decision]) -> set[tuple[str, str, str]]:
    event_ids = {d.event.id for d in decisions}
    rows = session.exec(
        select(Case.group_id, Case.event_source, Case.event_id).where(
            col(Case.event_id).in_(event_ids)
        )
    )
    return {(g, s, e) for g, s, e in rows}


def _case_actions(session: Session, case: Case, decision: Decision) -> list[CaseAction]:
    """Return the case's own action and, when its strike climbs the ladder, the step's."""
    assert case.action is not None
    matched: tuple[Match, ...] = decision.verdict.matched
    strongest = next(m for m in matched if m.action == case.action)
    reason = "; ".join(f"{m.kind}: {m.evidence}" for m in matched)
    own = _action(
        case,
        id=case.id,
        action=case.action,
        duration=case.mute_seconds,
        reason=reason,
        rule_id=strongest.rule_id,
    )
    if not case.strike:
        return [own]
    session.flush()
    policy = decision.policy
    strikes = count_strikes(
        session=session,
        group_id=case.group_id,
        member_id=case.member_id,
        until=decision.event.occurred_at,
        window_days=policy.strike_window_days,
    )
    step = escalation(
        policy=policy, strikes=strikes, action=case.action, mute_seconds=case.mute_seconds
    )
    if step is None:
        return [own]
    case.escalation = {**step.as_dict(), "strikes_counted": strikes}
    ladder = _action(
        case,
        id=f"{case.id}-ladder",
        action=step.action,
        duration=step.mute_seconds,
        reason=f"{strikes} strikes in {policy.strike_window_days} days",
        rule_id=strongest.rule_id,
    )
    return [own, ladder]


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
            _queue(session, _case_actions(session, case, decision), topic)
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


def _lift(action: CaseAction, now: datetime) -> CaseAction:
    return CaseAction(
        id=f"{action.id}-lift",
        case_id=action.case_id,
        group_id=action.group_id,
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
    _queue(session, [_lift(a, now) for a in actions if _running(a, now)], topic)
    session.flush()
    return case
