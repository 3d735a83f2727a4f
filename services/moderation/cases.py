"""Cases: one per judged event, its actions queued in the outbox in the same transaction.

A message of a member whom a rule case muted, kicked or banned moments before (the same
burst, decisions.Restriction) opens no case: the covering case lists it in
`burst_message_ids` and deletes it when the judging rules delete. Service functions: they
add and flush, never commit; the route or the consumer's batch handler commits (and then
wakes the outbox relay or publishes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, or_, tuple_, update
from sqlmodel import Session, col, select

from services.common.contracts.events import Event, MessageCreated
from services.common.db import keyset_page, new_id, utcnow
from services.common.errors import Conflict, NotFound
from services.moderation.decisions import (
    BURST_SECONDS,
    DELETE_SUFFIX,
    RESTRICTING,
    Grounds,
    Restriction,
    case_actions,
    delete_action,
    queue_actions,
    restriction_of,
)
from services.moderation.models import Case, CaseAction, CaseFilters, Lift, built
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
    """The case of a decision (every column given: see `models.built`)."""
    event, verdict = decision.event, decision.verdict
    shadow = not verdict.matched
    matches = verdict.shadow_matched if shadow else verdict.matched
    return built(
        Case,
        id=new_id("case_"),
        group_id=event.group_id,
        member_id=event.member_id,
        event_source=event.source,
        event_id=event.id,
        event_type=event.type,
        message_id=_message_id(event),
        action=verdict.shadow_action if shadow else verdict.action,
        mute_seconds=None if shadow else verdict.mute_seconds,
        rule_ids=[m.rule_id for m in matches],
        rule_names=[m.name for m in matches],
        shadow_rule_ids=[] if shadow else [m.rule_id for m in verdict.shadow_matched],
        evidence={m.rule_id: m.evidence for m in (*verdict.matched, *verdict.shadow_matched)},
        burst_message_ids=[],
        reporters=[],
        shadow=shadow,
        strike=not shadow and verdict.strike,
        escalation=None,
        reversed=False,
        reversed_at=None,
        reversed_by=None,
        reversal_reason=None,
        by=None,
        occurred_at=event.occurred_at,
        created_at=utcnow(),
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


def _grounds(decision: Decision, action: str | None) -> Grounds:
    event, matched = decision.event, decision.verdict.matched
    strongest = next(m for m in matched if m.action == action)
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


MemberKey = tuple[str, str]


class Bursts:
    """The restrictions rule cases put on the members of a batch: read from the database
    once, then kept up to date with the batch's own new cases."""

    def __init__(self, session: Session, decisions: Sequence[Decision]) -> None:
        self._session = session
        self._held: dict[MemberKey, tuple[Restriction, Case]] = {}
        spans: dict[MemberKey, tuple[datetime, datetime]] = {}
        for d in decisions:
            if isinstance(d.event, MessageCreated) and d.verdict.matched:
                member, at = (d.event.group_id, d.event.member_id), d.event.occurred_at
                first, last = spans.get(member, (at, at))
                spans[member] = (min(first, at), max(last, at))
        if spans:
            self._load(spans)

    def _load(self, spans: dict[MemberKey, tuple[datetime, datetime]]) -> None:
        """One query for every member of the batch (a query per member cost a fifth of the
        consumer's time under a flood), with the same text whatever the batch: the members
        as one `(group_id, member_id) IN` list and the batch's whole time span, each
        member's own span checked here (an OR of one window per member was compiled anew
        for every batch size). Each member's five latest cases are looked at."""
        first = min(f for f, _ in spans.values()) - timedelta(seconds=BURST_SECONDS)
        last = max(la for _, la in spans.values())
        query = (
            select(Case)
            .where(
                tuple_(col(Case.group_id), col(Case.member_id)).in_(sorted(spans)),
                col(Case.occurred_at) <= last,
                col(Case.occurred_at) > first,
                col(Case.shadow).is_(False),
                col(Case.reversed).is_(False),
                or_(col(Case.action).in_(RESTRICTING), col(Case.escalation).is_not(None)),
            )
            .order_by(col(Case.occurred_at).desc())
        )
        looked: dict[MemberKey, int] = {}
        settled: set[MemberKey] = set()
        for case in self._session.exec(query):
            member = (case.group_id, case.member_id)
            start, end = spans[member]
            if not start - timedelta(seconds=BURST_SECONDS) < case.occurred_at <= end:
                continue
            if member in settled or looked.get(member, 0) >= 5:
                continue
            looked[member] = looked.get(member, 0) + 1
            if self.note(case):
                settled.add(member)

    def note(self, case: Case) -> bool:
        """Keep the case's restriction when it is the member's latest; tell whether it held one."""
        restriction = restriction_of(case)
        if restriction is None:
            return False
        member = (case.group_id, case.member_id)
        held = self._held.get(member)
        if held is None or held[0].started_at <= restriction.started_at:
            self._held[member] = (restriction, case)
        return True

    def covering(self, decision: Decision) -> Case | None:
        """The case whose burst this message decision belongs to, if any."""
        event, action = decision.event, decision.verdict.action
        if not isinstance(event, MessageCreated) or action is None:
            return None
        held = self._held.get((event.group_id, event.member_id))
        if held is None or not held[0].covers(occurred_at=event.occurred_at, action=action):
            return None
        return held[1]


def _add_to_burst(case: Case, decision: Decision, queued: list[CaseAction]) -> None:
    """Record a later message of the burst on its case (once), deleting it if the rules do."""
    event = decision.event
    assert isinstance(event, MessageCreated)
    message_id = event.data.message_id
    if message_id in case.burst_message_ids or message_id == case.message_id:
        return  # a replay of an event already recorded
    case.burst_message_ids = [*case.burst_message_ids, message_id]
    if decision.verdict.deletes_message:
        grounds = _grounds(decision, decision.verdict.action)
        deletion = delete_action(
            case,
            grounds,
            id=f"{case.id}{DELETE_SUFFIX}-{len(case.burst_message_ids)}",
            message_id=message_id,
            event_id=event.id,
            message_at=event.occurred_at,
        )
        queued.append(deletion)


def record_decisions(*, session: Session, decisions: list[Decision], topic: str) -> list[Case]:
    """Add a case (and queue its actions for `topic`) per decision on an event not judged
    before, or record the event's message on the case whose burst it belongs to.

    Batch-first: two reads (the events already judged, the members' restrictions), then
    the cases and their actions are only added to the session; one flush at the end
    writes each table in one multi-row INSERT and the actions are queued in the outbox
    in one more, in decision order. (Queuing each case's actions as it was made flushed
    the session once per case: three round trips per judged event.) A ladder strike
    still flushes first, so the count sees the batch's earlier strikes."""
    if not decisions:
        return []
    existing = _judged_before(session, decisions)
    bursts = Bursts(session, decisions)
    created: list[Case] = []
    queued: list[CaseAction] = []
    for decision in decisions:
        event = decision.event
        event_key = (event.group_id, event.source, event.id)
        if event_key in existing:
            continue
        existing.add(event_key)
        covering = bursts.covering(decision)
        if covering is not None:
            _add_to_burst(covering, decision, queued)
            session.add(covering)
            continue
        case = _new_case(decision)
        session.add(case)
        created.append(case)
        if not case.shadow and case.action is not None:
            queued += case_actions(
                session,
                case,
                policy=decision.policy,
                grounds=_grounds(decision, case.action),
                until=event.occurred_at,
                deletes_message=decision.verdict.deletes_message,
            )
            bursts.note(case)
    queue_actions(session, queued, topic)
    session.flush()
    return created


def list_cases(
    *, session: Session, group_id: str, filters: CaseFilters, limit: int, cursor: str | None
) -> tuple[list[Case], str | None]:
    """Return a page of the group's cases matching the filters, newest first, and the next
    cursor."""
    query = select(Case).where(Case.group_id == group_id)
    if filters.member_id is not None:
        query = query.where(Case.member_id == filters.member_id)
    if filters.action is not None:
        query = query.where(Case.action == filters.action)
    if filters.rule_id is not None:
        # rule_ids is a JSON list of ids: its text holds `"<id>"` exactly when it lists it
        # (ids are letters, digits and `_`; autoescape keeps `_` literal).
        listed = cast(col(Case.rule_ids), String).contains(f'"{filters.rule_id}"', autoescape=True)
        query = query.where(listed)
    if filters.created_from is not None:
        query = query.where(col(Case.created_at) >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(col(Case.created_at) < filters.created_to)
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


def _lift(action: CaseAction, now: datetime, source: str | None, reason: str) -> CaseAction:
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
        reason=reason,
        created_at=now,
    )


def reverse_case(
    *, session: Session, group_id: str, case_id: str, by: str, reason: str | None, topic: str
) -> tuple[Case, list[Lift]]:
    """Mark the case reversed by `by` (its strike stops counting); queue unmute/unban if
    running; return the case and the lifts queued."""
    case = get_case(session=session, group_id=group_id, case_id=case_id)
    now = utcnow()
    # A conditional update, so two concurrent reversals cannot both win.
    result = session.execute(
        update(Case)
        .where(col(Case.id) == case_id, col(Case.reversed).is_(False))
        .values(
            reversed=True,
            reversed_at=now,
            reversed_by=by[:200],
            reversal_reason=reason[:1000] if reason else None,
        )
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
    why = f"case reversed on appeal: {reason}" if reason else "case reversed on appeal"
    lifts = [_lift(a, now, source, why[:1000]) for a in actions if _running(a, now)]
    queue_actions(session, lifts, topic)
    session.flush()
    return case, [Lift(id=a.id, action=a.action, member_id=a.member_id) for a in lifts]
