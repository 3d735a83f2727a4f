"""Cases: one per judged event, with its actions queued in the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from services.common.contracts.events import Event, MessageCreated
from services.moderation.engine import PolicySpec, Verdict
from services.moderation.ladder import count_strikes, escalation
from services.moderation.models import Case, ModerationAction, utc


class CaseNotFound(LookupError):
    """No case with this id in the group."""


class AlreadyReversed(RuntimeError):
    """The case was reversed before."""


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
) -> ModerationAction:
    return ModerationAction(
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


def record_decisions(*, session: Session, decisions: list[Decision]) -> list[Case]:
    """Store a case (and its queued actions) per decision on an event not judged before."""
    if not decisions:
        return []
    event_ids = {d.event.id for d in decisions}
    existing = {
        (g, s, e)
        for g, s, e in session.exec(
            select(Case.group_id, Case.event_source, Case.event_id).where(
                col(Case.event_id).in_(event_ids)
            )
        )
    }
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
        if case.shadow or case.action is None:
            continue
        strongest = next(m for m in decision.verdict.matched if m.action == case.action)
        reason = "; ".join(f"{m.kind}: {m.evidence}" for m in decision.verdict.matched)
        session.add(
            _action(
                case,
                id=case.id,
                action=case.action,
                duration=case.mute_seconds,
                reason=reason,
                rule_id=strongest.rule_id,
            )
        )
        if not case.strike:
            continue
        session.flush()
        strikes = count_strikes(
            session=session,
            group_id=case.group_id,
            member_id=case.member_id,
            until=event.occurred_at,
            window_days=decision.policy.strike_window_days,
        )
        step = escalation(
            policy=decision.policy,
            strikes=strikes,
            action=case.action,
            mute_seconds=case.mute_seconds,
        )
        if step is not None:
            case.escalation = {**step.as_dict(), "strikes_counted": strikes}
            session.add(
                _action(
                    case,
                    id=f"{case.id}-ladder",
                    action=step.action,
                    duration=step.mute_seconds,
                    reason=f"{strikes} strikes in {decision.policy.strike_window_days} days",
                    rule_id=strongest.rule_id,
                )
            )
    session.commit()
    return created


def list_cases(
    *, session: Session, group_id: str, member_id: str | None, limit: int, cursor: str | None
) -> tuple[list[Case], str | None]:
    """Return a page of the group's cases, newest first, and the next cursor."""
    query = select(Case).where(Case.group_id == group_id)
    if member_id is not None:
        query = query.where(Case.member_id == member_id)
    if cursor:
        query = query.where(col(Case.id) < cursor)
    cases = list(session.exec(query.order_by(col(Case.id).desc()).limit(limit + 1)).all())
    more = len(cases) > limit
    return cases[:limit], cases[limit - 1].id if more else None


def get_case(*, session: Session, group_id: str, case_id: str) -> Case | None:
    """Return the group's case with this id, or None."""
    case = session.get(Case, case_id)
    return case if case is not None and case.group_id == group_id else None


def _running(action: ModerationAction, now: datetime) -> bool:
    if action.duration_seconds is None:
        return action.action == "ban"
    return utc(action.created_at) + timedelta(seconds=action.duration_seconds) > now


def reverse_case(*, session: Session, group_id: str, case_id: str) -> Case:
    """Mark the case reversed (its strike stops counting) and queue unmute/unban if running."""
    if get_case(session=session, group_id=group_id, case_id=case_id) is None:
        raise CaseNotFound(case_id)
    now = datetime.now(UTC)
    # A conditional update, so two concurrent reversals cannot both win.
    result = session.execute(
        update(Case)
        .where(col(Case.id) == case_id, col(Case.reversed).is_(False))
        .values(reversed=True, reversed_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise AlreadyReversed(case_id)
    actions = session.exec(
        select(ModerationAction).where(
            ModerationAction.case_id == case_id, col(ModerationAction.action).in_(["mute", "ban"])
        )
    ).all()
    case = session.get(Case, case_id)
    assert case is not None
    session.refresh(case)
    for action in actions:
        if _running(action, now):
            lift = "unmute" if action.action == "mute" else "unban"
            session.add(
                ModerationAction(
                    id=f"{action.id}-lift",
                    case_id=case_id,
                    group_id=group_id,
                    member_id=action.member_id,
                    event_id=action.event_id,
                    message_id=action.message_id,
                    action=lift,
                    rule_id=action.rule_id,
                    reason="case reversed on appeal",
                    created_at=now,
                )
            )
    session.commit()
    session.refresh(case)
    return case
