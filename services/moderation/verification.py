"""Newcomer verification (入群验证): mute on join, unmute on the right code, `on_fail` after.

On `member.joined` (verification enabled, the member not exempt) a 4-digit code is drawn
and the member muted with the `verify` notice naming it (a case). A message of theirs
holding the code, sent (`occurred_at`) within `within_seconds` of the join, unmutes them
(a case); a wrong code does nothing. The timer loop applies `on_fail` (a case) to those
still pending at the deadline — a little after it (`GRACE`), so a code sent in time but
read late by the consumer still counts — unless they left meanwhile. Every move is a
conditional update from `pending`, so the consumer and the timers of any replica never
both act. Service functions: they add and flush, never commit.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.contracts.events import MemberJoined, MemberLeft, MessageCreated
from services.common.db import utcnow
from services.common.text import plain_form
from services.moderation import roster
from services.moderation.membership_cases import Step, open_case
from services.moderation.membership_models import Verification, VerificationPolicy
from services.moderation.models import Case, PolicyPublic
from services.moderation.notices import NoticeFacts, notice_for
from services.moderation.rulebook_cache import policy_spec
from services.moderation.rulesets import get_policy
from services.moderation.sources import latest_source

GRACE = timedelta(seconds=2)
# The mute outlasts the window: it is lifted by the unmute, or moot after on_fail.
MUTE_MARGIN_SECONDS = 3600
VERIFY_REASON = "入群验证"


def new_code() -> str:
    """Four random digits."""
    return f"{secrets.randbelow(10_000):04d}"


def holds_code(text: str, code: str) -> bool:
    """Tell whether the text holds the code as a number of its own (full-width digits too)."""
    return re.search(rf"(?<!\d){re.escape(code)}(?!\d)", plain_form(text)) is not None


def enabled(policy: PolicyPublic) -> VerificationPolicy | None:
    """The group's verification settings when it is on, else None."""
    settings = policy.verification
    return settings if settings is not None and settings.enabled else None


def _settle(session: Session, verification_id: str, status: str) -> bool:
    result = session.execute(
        sa.update(Verification)
        .where(col(Verification.id) == verification_id, col(Verification.status) == "pending")
        .values(status=status, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def known_joins(session: Session, events: Iterable[MemberJoined]) -> set[tuple[str, str, str]]:
    """(group, source, join event id) of the joins that already have a verification."""
    ids = {e.id for e in events}
    if not ids:
        return set()
    query = select(Verification.group_id, Verification.source, Verification.join_event_id).where(
        col(Verification.join_event_id).in_(ids)
    )
    return {(g, s, e) for g, s, e in session.exec(query)}


def start(
    session: Session,
    event: MemberJoined,
    *,
    policy: PolicyPublic,
    settings: VerificationPolicy,
    topic: str,
) -> Verification:
    """Draw the member's code, mute them with the verify notice (a case)."""
    # A member joining again with a verification pending had left: that one is moot.
    session.execute(
        sa.update(Verification)
        .where(
            col(Verification.group_id) == event.group_id,
            col(Verification.member_id) == event.member_id,
            col(Verification.status) == "pending",
        )
        .values(status="left", decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    verification = Verification(
        group_id=event.group_id,
        member_id=event.member_id,
        source=event.source,
        join_event_id=event.id,
        code=new_code(),
        on_fail=settings.on_fail,
        joined_at=event.occurred_at,
        deadline_at=event.occurred_at + timedelta(seconds=settings.within_seconds),
    )
    session.add(verification)
    facts = NoticeFacts(
        member_id=event.member_id,
        display_name=event.data.display_name,
        reason=VERIFY_REASON,
        strikes=0,
        duration_seconds=settings.within_seconds,
        code=verification.code,
    )
    step = Step(
        group_id=event.group_id,
        member_id=event.member_id,
        action="mute",
        reason=f"{VERIFY_REASON}: waiting for the code",
        kind="verification",
        source=event.source,
        duration=settings.within_seconds + MUTE_MARGIN_SECONDS,
        display_name=event.data.display_name,
    )
    notice = notice_for(policy.notices.model_dump(), "verify", facts)
    open_case(session, step, policy=policy_spec(policy), topic=topic, notice=notice,
              occurred_at=event.occurred_at)  # fmt: skip
    return verification


def pending_for(session: Session, pairs: set[tuple[str, str]]) -> list[Verification]:
    """The pending verifications of these (group, member) pairs."""
    if not pairs:
        return []
    query = select(Verification).where(
        col(Verification.status) == "pending",
        col(Verification.group_id).in_({g for g, _ in pairs}),
        col(Verification.member_id).in_({m for _, m in pairs}),
    )
    return [v for v in session.exec(query) if (v.group_id, v.member_id) in pairs]


def answers(verification: Verification, event: MessageCreated) -> bool:
    """Tell whether the message passes the verification: the code, sent within the window."""
    return verification.joined_at <= event.occurred_at <= verification.deadline_at and holds_code(
        event.data.text, verification.code
    )


def check_message(
    session: Session,
    event: MessageCreated,
    verification: Verification,
    *,
    policy: PolicyPublic,
    topic: str,
) -> Case | None:
    """Unmute the member (a case) when the message passes and the verification was pending."""
    if not answers(verification, event) or not _settle(session, verification.id, "verified"):
        return None
    verification.status = "verified"
    step = Step(
        group_id=event.group_id,
        member_id=event.member_id,
        action="unmute",
        reason=f"{VERIFY_REASON}: code received",
        kind="verification",
        source=event.source,
        display_name=event.data.display_name,
    )
    return open_case(session, step, policy=policy_spec(policy), topic=topic,
                     occurred_at=event.occurred_at)  # fmt: skip


def member_left(session: Session, event: MemberLeft, verification: Verification) -> None:
    """A member who left after joining has nothing left to verify."""
    if event.occurred_at >= verification.joined_at and _settle(session, verification.id, "left"):
        verification.status = "left"


def due(session: Session, now: datetime, limit: int = 200) -> list[str]:
    """Ids of pending verifications whose deadline (plus GRACE) has passed, oldest first."""
    query = (
        select(Verification.id)
        .where(col(Verification.status) == "pending", col(Verification.deadline_at) <= now - GRACE)
        .order_by(col(Verification.deadline_at))
        .limit(limit)
    )
    return list(session.exec(query).all())


def expire(session: Session, verification_id: str, *, topic: str) -> Case | None:
    """Apply `on_fail` to a verification still pending (a case); None when another process
    settled it, the member left, or is exempt by now."""
    verification = session.get(Verification, verification_id)
    if verification is None or not _settle(session, verification_id, "failed"):
        return None
    group, member = verification.group_id, verification.member_id
    if not roster.is_member(session, group, member):
        verification.status = "left"  # claimed above: this transaction owns the row
        session.add(verification)
        session.flush()
        return None
    policy = get_policy(session=session, group_id=group)
    if member in policy.exempt_members:
        return None
    found = roster.member(session, group, member)
    step = Step(
        group_id=group,
        member_id=member,
        action=verification.on_fail,
        reason=f"{VERIFY_REASON}: no code within the time",
        kind="verification",
        source=latest_source(session, group) or verification.source,
        display_name=found.display_name if found else None,
    )
    return open_case(session, step, policy=policy_spec(policy), topic=topic)
