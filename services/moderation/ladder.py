"""Strikes and the escalation ladder: a warn adds a strike; enough strikes climb a step."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.moderation.models import Case
from services.moderation.specs import ACTION_RANK, PolicySpec, Step


def count_strikes(
    *, session: Session, group_id: str, member_id: str, until: datetime, window_days: int
) -> int:
    """Count the member's unreversed strikes that occurred in the window ending at `until`."""
    query = select(func.count()).where(
        Case.group_id == group_id,
        Case.member_id == member_id,
        col(Case.strike).is_(True),
        col(Case.reversed).is_(False),
        col(Case.occurred_at) > until - timedelta(days=window_days),
        col(Case.occurred_at) <= until,
    )
    return int(session.exec(query).one())


def escalation(
    *, policy: PolicySpec, strikes: int, action: str | None, mute_seconds: int | None
) -> Step | None:
    """Return the ladder step to apply on top of the decision, if it adds anything."""
    step = policy.step_for(strikes)
    if step is None or action is None:
        return step
    if ACTION_RANK[step.action] < ACTION_RANK[action]:
        return None
    if step.action == action and (step.mute_seconds or 0) <= (mute_seconds or 0):
        return None
    return step
