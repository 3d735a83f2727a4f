"""Join requests (`member.join_requested`): stored, answered by the policy or an operator.

Each request is stored once (unique on its event). A blocklisted applicant is declined at
once; in `auto` mode an answer holding one of `answer_keywords` (folded like keyword rules)
is approved and any other declined; in `manual` mode (and with no `join_requests` policy)
the request waits for `approve` / `decline`. Every decision is a case whose
`approve_join` / `decline_join` action carries the platform's `request_ref`. A decision is
a conditional update from `pending`, so two replicas deciding at once make one decision.
Service functions: they add and flush, never commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.contracts.events import MemberJoinRequested
from services.common.db import keyset_page, utcnow
from services.common.errors import Conflict, NotFound
from services.common.text import Text, fold
from services.moderation import blocklists
from services.moderation.membership_cases import Step, open_case
from services.moderation.membership_models import JoinRequest, JoinRequestPolicy
from services.moderation.models import PolicyPublic
from services.moderation.rulebook_cache import policy_spec

AUTO = "auto"
BLOCKLIST = "blocklist"


def answer_matches(policy: JoinRequestPolicy, answer: str) -> bool:
    """Tell whether the answer holds one of the keywords, both folded (no keywords: any)."""
    if not policy.answer_keywords:
        return True
    folded = Text(answer).folded
    return any((term := fold(k)) and term in folded for k in policy.answer_keywords)


def automatic_decision(policy: PolicyPublic, answer: str) -> bool | None:
    """True to approve, False to decline, None to wait for an operator (pure)."""
    settings = policy.join_requests
    if settings is None or settings.mode != "auto":
        return None
    return answer_matches(settings, answer)


def _known(session: Session, event: MemberJoinRequested) -> bool:
    query = select(JoinRequest.id).where(
        col(JoinRequest.group_id) == event.group_id,
        col(JoinRequest.source) == event.source,
        col(JoinRequest.event_id) == event.id,
    )
    return session.exec(query).first() is not None


def receive(
    session: Session,
    event: MemberJoinRequested,
    *,
    policy: PolicyPublic,
    listed_on: str | None,
    topic: str,
) -> JoinRequest | None:
    """Store a new request and decide it when the policy or a blocklist does; None for a replay."""
    if _known(session, event):
        return None
    data = event.data
    request = JoinRequest(
        group_id=event.group_id,
        member_id=event.member_id,
        display_name=data.display_name,
        answer=data.answer,
        request_ref=data.request_ref,
        channel=data.channel,
        source=event.source,
        event_id=event.id,
        created_at=event.occurred_at,
    )
    session.add(request)
    session.flush()
    if listed_on is not None:
        _decide(session, request, approve=False, by=BLOCKLIST, reason=f"blocklist {listed_on}",
                policy=policy, topic=topic)  # fmt: skip
        return request
    approve = automatic_decision(policy, data.answer)
    if approve is not None:
        reason = "answer holds a keyword" if approve else "answer holds no keyword"
        _decide(session, request, approve=approve, by=AUTO, reason=reason, policy=policy,
                topic=topic)  # fmt: skip
    return request


def _decide(
    session: Session,
    request: JoinRequest,
    *,
    approve: bool,
    by: str,
    reason: str,
    policy: PolicyPublic,
    topic: str,
) -> None:
    """Move a pending request (already claimed or new in this transaction) to its decision."""
    step = Step(
        group_id=request.group_id,
        member_id=request.member_id,
        action="approve_join" if approve else "decline_join",
        reason=reason,
        kind="join_request",
        source=request.source,
        by=None if by in (AUTO, BLOCKLIST) else by,
        request_ref=request.request_ref,
        display_name=request.display_name,
    )
    case = open_case(session, step, policy=policy_spec(policy), topic=topic)
    request.status = "approved" if approve else "declined"
    request.decided_at = case.created_at
    request.decided_by = by[:200]
    request.case_id = case.id
    session.add(request)
    session.flush()


def get_request(*, session: Session, group_id: str, request_id: str) -> JoinRequest:
    """The group's join request; NotFound otherwise."""
    request = session.get(JoinRequest, request_id)
    if request is None or request.group_id != group_id:
        raise NotFound("join request not found")
    return request


def list_requests(
    *, session: Session, group_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[JoinRequest], str | None]:
    """A page of the group's requests, newest first, optionally of one status."""
    query = select(JoinRequest).where(col(JoinRequest.group_id) == group_id)
    if status is not None:
        query = query.where(col(JoinRequest.status) == status)
    return keyset_page(session, query, JoinRequest.id, limit=limit, cursor=cursor, descending=True)


def _claim(session: Session, request_id: str, status: str) -> bool:
    result = session.execute(
        sa.update(JoinRequest)
        .where(col(JoinRequest.id) == request_id, col(JoinRequest.status) == "pending")
        .values(status=status, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def decide(
    *,
    session: Session,
    group_id: str,
    request_id: str,
    approve: bool,
    by: str,
    policy: PolicyPublic,
    topic: str,
    reason: str | None = None,
) -> JoinRequest:
    """An operator's (or a blocklist's) decision; NotFound, or Conflict when already decided
    or when approving a member on one of the group's blocklists."""
    request = get_request(session=session, group_id=group_id, request_id=request_id)
    found = blocklists.listings(session, policy.blocklists, [request.member_id])
    if approve and (entry := blocklists.listed_on(found, policy.blocklists, request.member_id)):
        raise Conflict(f"member is on blocklist {entry.list_name!r}")
    if not _claim(session, request_id, "approved" if approve else "declined"):
        raise Conflict("join request already decided")
    session.refresh(request)
    default = f"join request {'approved' if approve else 'declined'} by {by}"
    _decide(session, request, approve=approve, by=by, reason=reason or default, policy=policy,
            topic=topic)  # fmt: skip
    return request


def pending_of(session: Session, member_id: str, group_ids: list[str]) -> list[JoinRequest]:
    """The member's pending requests in these groups."""
    if not group_ids:
        return []
    query = select(JoinRequest).where(
        col(JoinRequest.member_id) == member_id,
        col(JoinRequest.group_id).in_(group_ids),
        col(JoinRequest.status) == "pending",
    )
    return list(session.exec(query).all())
