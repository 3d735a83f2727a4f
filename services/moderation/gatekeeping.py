"""Membership in the consumer's batch: the roster, join requests, blocklisted joiners,
newcomer verification; and propagating blocklist entries to the subscribed groups.

`apply` runs in the consumer's batch transaction after the rules' cases: it records the
roster, then walks the events in order — a join request is stored (and decided), a
listed joiner banned (once: `moderation_blocklist_hit`), another joiner muted for
verification, a message checked for its author's code, a leave ending a pending
verification. Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from services.common.contracts.events import (
    Event,
    MemberJoined,
    MemberJoinRequested,
    MemberLeft,
    MessageCreated,
)
from services.common.errors import Conflict
from services.moderation import blocklists, join_requests, roster, verification
from services.moderation.membership_cases import Step, open_case
from services.moderation.membership_models import BlocklistEntry, BlocklistHit, Verification
from services.moderation.models import Case, PolicyPublic
from services.moderation.rulebook_cache import policy_spec
from services.moderation.rulesets import get_policy
from services.moderation.sources import latest_source
from services.moderation.telemetry import BLOCKLIST_BANS, JOIN_REQUESTS, VERIFICATIONS


def _hits_before(session: Session, joins: Sequence[MemberJoined]) -> set[tuple[str, str, str]]:
    ids = {e.id for e in joins}
    if not ids:
        return set()
    query = select(BlocklistHit.group_id, BlocklistHit.source, BlocklistHit.event_id).where(
        col(BlocklistHit.event_id).in_(ids)
    )
    return {(g, s, e) for g, s, e in session.exec(query)}


def _ban_listed(
    session: Session, event: MemberJoined, entry: BlocklistEntry, policy: PolicyPublic, topic: str
) -> Case:
    step = Step(
        group_id=event.group_id,
        member_id=event.member_id,
        action="ban",
        reason=_listed_reason(entry),
        kind="blocklist",
        source=event.source,
        display_name=event.data.display_name,
    )
    case = open_case(session, step, policy=policy_spec(policy), topic=topic,
                     occurred_at=event.occurred_at)  # fmt: skip
    session.add(
        BlocklistHit(
            group_id=event.group_id,
            source=event.source,
            event_id=event.id,
            member_id=event.member_id,
            list_name=entry.list_name,
            case_id=case.id,
        )
    )
    return case


def _listed_reason(entry: BlocklistEntry) -> str:
    return f"blocklist {entry.list_name}" + (f": {entry.reason}" if entry.reason else "")


class _Batch:
    """What `apply` looks up once per batch."""

    def __init__(self, session: Session, events: Sequence[Event]) -> None:
        gate = [e for e in events if isinstance(e, MemberJoined | MemberJoinRequested)]
        self.policies: dict[str, PolicyPublic] = {
            g: get_policy(session=session, group_id=g) for g in sorted({e.group_id for e in gate})
        }
        lists = {name for p in self.policies.values() for name in p.blocklists}
        self.listed = blocklists.listings(session, lists, {e.member_id for e in gate})
        joins = [e for e in gate if isinstance(e, MemberJoined)]
        self.verified_joins = verification.known_joins(session, joins)
        self.hit_joins = _hits_before(session, joins) if self.listed else set()
        watched = {
            (e.group_id, e.member_id) for e in events if isinstance(e, MessageCreated | MemberLeft)
        }
        self.pending: dict[tuple[str, str], Verification] = {
            (v.group_id, v.member_id): v for v in verification.pending_for(session, watched)
        }

    def policy(self, session: Session, group_id: str) -> PolicyPublic:
        if group_id not in self.policies:
            self.policies[group_id] = get_policy(session=session, group_id=group_id)
        return self.policies[group_id]

    def entry_for(self, policy: PolicyPublic, member_id: str) -> BlocklistEntry | None:
        if member_id in policy.exempt_members:
            return None
        return blocklists.listed_on(self.listed, policy.blocklists, member_id)


def apply(*, session: Session, events: Sequence[Event], topic: str) -> int:
    """Record the batch's roster and membership steps; return how many cases were opened."""
    roster.record(session, events)
    batch = _Batch(session, events)
    opened = 0
    for event in events:
        key = (event.group_id, event.member_id)
        if isinstance(event, MemberJoinRequested):
            policy = batch.policy(session, event.group_id)
            entry = batch.entry_for(policy, event.member_id)
            request = join_requests.receive(
                session,
                event,
                policy=policy,
                listed_on=entry.list_name if entry else None,
                topic=topic,
            )
            if request is not None:
                JOIN_REQUESTS.labels(request.status).inc()
                opened += int(request.case_id is not None)
        elif isinstance(event, MemberJoined):
            opened += _joined(session, event, batch, topic)
        elif isinstance(event, MessageCreated) and key in batch.pending:
            pending = batch.pending[key]
            policy = batch.policy(session, event.group_id)
            if verification.check_message(session, event, pending, policy=policy, topic=topic):
                del batch.pending[key]
                VERIFICATIONS.labels("verified").inc()
                opened += 1
        elif isinstance(event, MemberLeft) and key in batch.pending:
            verification.member_left(session, event, batch.pending[key])
            if batch.pending[key].status != "pending":
                del batch.pending[key]
    session.flush()
    return opened


def _joined(session: Session, event: MemberJoined, batch: _Batch, topic: str) -> int:
    policy = batch.policy(session, event.group_id)
    join_key = (event.group_id, event.source, event.id)
    entry = batch.entry_for(policy, event.member_id)
    if entry is not None:
        if join_key in batch.hit_joins:
            return 0
        batch.hit_joins.add(join_key)
        _ban_listed(session, event, entry, policy, topic)
        BLOCKLIST_BANS.inc()
        return 1
    settings = verification.enabled(policy)
    if settings is None or event.member_id in policy.exempt_members:
        return 0
    if join_key in batch.verified_joins:
        return 0
    batch.verified_joins.add(join_key)
    started = verification.start(session, event, policy=policy, settings=settings, topic=topic)
    batch.pending[(event.group_id, event.member_id)] = started
    VERIFICATIONS.labels("started").inc()
    return 1


def propagate(session: Session, entry: BlocklistEntry, *, topic: str, by: str | None) -> list[str]:
    """Ban the listed member in every subscribed group they are in (but the group whose ban
    was shared into the list) and decline their pending requests there; return the groups
    banned in."""
    subscribed = blocklists.subscribers(session, [entry.list_name])
    banned: list[str] = []
    for group_id in roster.current_members(session, entry.member_id, subscribed):
        policy = get_policy(session=session, group_id=group_id)
        if group_id == entry.origin_group_id or entry.member_id in policy.exempt_members:
            continue
        record = roster.member(session, group_id, entry.member_id)
        step = Step(
            group_id=group_id,
            member_id=entry.member_id,
            action="ban",
            reason=_listed_reason(entry),
            kind="blocklist",
            source=latest_source(session, group_id),
            by=by,
            display_name=record.display_name if record else None,
        )
        open_case(session, step, policy=policy_spec(policy), topic=topic)
        BLOCKLIST_BANS.inc()
        banned.append(group_id)
    for request in join_requests.pending_of(session, entry.member_id, sorted(subscribed)):
        try:
            join_requests.decide(
                session=session,
                group_id=request.group_id,
                request_id=request.id,
                approve=False,
                by=join_requests.BLOCKLIST,
                policy=get_policy(session=session, group_id=request.group_id),
                topic=topic,
                reason=_listed_reason(entry),
            )
        except Conflict:
            continue  # an operator decided it meanwhile
    return banned
