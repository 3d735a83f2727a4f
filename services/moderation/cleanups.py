"""Lurker clean-ups (定期清理): preview the silent members, then kick them at a pace.

A preview lists the current members (roster.py) who joined at least `inactive_days` ago
and sent no message on the last `inactive_days` local days (with `never_spoke_only`, never
one) — metrics' dormant list for the same group and day, less those who joined within the
window and the exempt members. `start` has the timer loop kick them, at most `per_minute`
a minute: kick k is due `k·60/per_minute` seconds after the first (after a pause, at most
a second's worth catches up at once). Each kick is a case (reason `cleanup`, no notice);
a member who left meanwhile, or became exempt, is skipped. The loop claims a clean-up by
bumping its `version` (a conditional update; PostgreSQL first skips rows another process
has locked), so each member is kicked once across replicas and restarts.
Service functions: they add and flush, never commit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.db import keyset_page, utcnow
from services.common.errors import Conflict, NotFound
from services.moderation import roster
from services.moderation.membership_cases import QUIET, Step, open_case
from services.moderation.membership_models import (
    Cleanup,
    CleanupCreate,
    CleanupMember,
    CleanupPublic,
    LurkerPublic,
    MemberRecord,
)
from services.moderation.models import PolicyPublic
from services.moderation.rulesets import get_policy
from services.moderation.sources import latest_source

MAX_MEMBERS = 10_000
CATCH_UP = timedelta(seconds=1)
REASON = "cleanup"


def preview(
    *,
    session: Session,
    group_id: str,
    body: CleanupCreate,
    by: str,
    policy: PolicyPublic,
    tz: ZoneInfo,
    now: datetime,
) -> Cleanup:
    """Store a clean-up in `preview` with the members it would kick (at most MAX_MEMBERS)."""
    found = roster.lurkers(
        session,
        group_id=group_id,
        since=roster.silence_threshold(now, tz, body.inactive_days),
        never_spoke_only=body.never_spoke_only,
        exempt=frozenset(policy.exempt_members),
        limit=MAX_MEMBERS,
    )
    cleanup = Cleanup(
        group_id=group_id,
        inactive_days=body.inactive_days,
        never_spoke_only=body.never_spoke_only,
        per_minute=body.per_minute,
        count=len(found),
        created_by=by[:200],
        created_at=now,
    )
    session.add(cleanup)
    session.add_all(
        CleanupMember(
            cleanup_id=cleanup.id,
            member_id=m.member_id,
            position=i,
            display_name=m.display_name,
            joined_at=m.first_joined_at,
            last_active_at=m.last_active_at,
        )
        for i, m in enumerate(found)
    )
    session.flush()
    return cleanup


def get_cleanup(*, session: Session, group_id: str, cleanup_id: str) -> Cleanup:
    """The group's clean-up; NotFound otherwise."""
    cleanup = session.get(Cleanup, cleanup_id)
    if cleanup is None or cleanup.group_id != group_id:
        raise NotFound("cleanup not found")
    return cleanup


def list_cleanups(
    *, session: Session, group_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Cleanup], str | None]:
    """A page of the group's clean-ups, newest first, optionally of one status."""
    query = select(Cleanup).where(col(Cleanup.group_id) == group_id)
    if status is not None:
        query = query.where(col(Cleanup.status) == status)
    return keyset_page(session, query, Cleanup.id, limit=limit, cursor=cursor, descending=True)


def present(session: Session, cleanup: Cleanup) -> CleanupPublic:
    """The clean-up with its listed members, in kick order."""
    members = session.exec(
        select(CleanupMember)
        .where(col(CleanupMember.cleanup_id) == cleanup.id)
        .order_by(col(CleanupMember.position))
    ).all()
    return CleanupPublic.model_validate(
        cleanup,
        update={"members": [LurkerPublic.model_validate(m, from_attributes=True) for m in members]},
        from_attributes=True,
    )


def _move(session: Session, cleanup_id: str, wanted: tuple[str, ...], **values: object) -> bool:
    result = session.execute(
        sa.update(Cleanup)
        .where(col(Cleanup.id) == cleanup_id, col(Cleanup.status).in_(wanted))
        .values(version=Cleanup.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def start(*, session: Session, group_id: str, cleanup_id: str, by: str) -> Cleanup:
    """Start kicking; NotFound, or Conflict unless it is a preview."""
    cleanup = get_cleanup(session=session, group_id=group_id, cleanup_id=cleanup_id)
    now = utcnow()
    values: dict[str, object] = {"status": "running", "started_at": now, "next_kick_at": now}
    if cleanup.count == 0:
        values.update(status="done", finished_at=now)
    if not _move(session, cleanup_id, ("preview",), started_by=by[:200], **values):
        raise Conflict(f"cleanup is {_status(session, cleanup_id)}, not a preview")
    session.refresh(cleanup)
    return cleanup


def cancel(*, session: Session, group_id: str, cleanup_id: str) -> Cleanup:
    """Stop a preview or a running clean-up; NotFound, or Conflict when it is over."""
    cleanup = get_cleanup(session=session, group_id=group_id, cleanup_id=cleanup_id)
    if not _move(session, cleanup_id, ("preview", "running"), status="cancelled",
                 finished_at=utcnow(), next_kick_at=None):  # fmt: skip
        raise Conflict(f"cleanup is already {_status(session, cleanup_id)}")
    session.refresh(cleanup)
    return cleanup


def _status(session: Session, cleanup_id: str) -> str:
    return str(session.exec(select(Cleanup.status).where(col(Cleanup.id) == cleanup_id)).one())


def due(session: Session, now: datetime, limit: int = 100) -> list[str]:
    """Ids of running clean-ups with a kick due."""
    query = (
        select(Cleanup.id)
        .where(col(Cleanup.status) == "running", col(Cleanup.next_kick_at) <= now)
        .order_by(col(Cleanup.next_kick_at))
        .limit(limit)
    )
    return list(session.exec(query).all())


def kicks_due(*, next_kick_at: datetime, now: datetime, per_minute: int) -> tuple[int, datetime]:
    """How many kicks are due by `now`, and the slot the first of them takes (pure)."""
    base = max(next_kick_at, now - CATCH_UP)
    interval = 60.0 / per_minute
    if now < base:
        return 0, base
    return math.floor((now - base).total_seconds() / interval + 1e-9) + 1, base


def _claim(session: Session, cleanup_id: str, now: datetime, postgres: bool) -> Cleanup | None:
    query = select(Cleanup).where(
        col(Cleanup.id) == cleanup_id,
        col(Cleanup.status) == "running",
        col(Cleanup.next_kick_at) <= now,
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    cleanup = session.exec(query).first()
    if cleanup is None:
        return None
    claimed = session.execute(
        sa.update(Cleanup)
        .where(col(Cleanup.id) == cleanup_id, col(Cleanup.version) == cleanup.version)
        .values(version=cleanup.version + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    cleanup.version += 1
    return cleanup


def advance(*, session: Session, cleanup_id: str, now: datetime, topic: str) -> int | None:
    """Claim a clean-up with kicks due and make them; return the kicks, None if not claimed."""
    cleanup = _claim(session, cleanup_id, now, session.get_bind().dialect.name == "postgresql")
    if cleanup is None or cleanup.next_kick_at is None:
        return None
    allowed, base = kicks_due(
        next_kick_at=cleanup.next_kick_at, now=now, per_minute=cleanup.per_minute
    )
    policy = get_policy(session=session, group_id=cleanup.group_id)
    exempt = frozenset(policy.exempt_members)
    source = latest_source(session, cleanup.group_id)
    kicked = 0
    left = True
    while kicked < allowed:
        chunk = _unsettled(session, cleanup.id, allowed - kicked + 100)
        if not chunk:
            left = False
            break
        present_now = _current(session, cleanup.group_id, [m.member_id for m in chunk])
        for listed in chunk:
            if kicked >= allowed:
                break
            if listed.member_id in exempt or listed.member_id not in present_now:
                listed.outcome = "skipped"
                cleanup.skipped += 1
            else:
                step = Step(
                    group_id=cleanup.group_id,
                    member_id=listed.member_id,
                    action="kick",
                    reason=REASON,
                    kind="cleanup",
                    source=source,
                    by=cleanup.started_by,
                    display_name=listed.display_name,
                )
                listed.case_id = open_case(session, step, policy=QUIET, topic=topic).id
                listed.outcome = "kicked"
                cleanup.kicked += 1
                kicked += 1
            session.add(listed)
        session.flush()
    if left and not _unsettled(session, cleanup.id, 1):
        left = False
    cleanup.next_kick_at = base + timedelta(seconds=kicked * 60.0 / cleanup.per_minute)
    if not left:
        cleanup.status, cleanup.finished_at, cleanup.next_kick_at = "done", now, None
    session.add(cleanup)
    session.flush()
    return kicked


def _unsettled(session: Session, cleanup_id: str, limit: int) -> list[CleanupMember]:
    query = (
        select(CleanupMember)
        .where(col(CleanupMember.cleanup_id) == cleanup_id, col(CleanupMember.outcome).is_(None))
        .order_by(col(CleanupMember.position))
        .limit(limit)
    )
    return list(session.exec(query).all())


def _current(session: Session, group_id: str, member_ids: list[str]) -> set[str]:
    query = select(MemberRecord).where(
        col(MemberRecord.group_id) == group_id, col(MemberRecord.member_id).in_(member_ids)
    )
    return {r.member_id for r in session.exec(query) if roster.is_current(r)}
