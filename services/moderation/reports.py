"""Member reports (举报): a reply starting with a report keyword reports the replied-to message.

Each member reports a message once (`moderation_report_vote`'s primary key: a replayed or
repeated report inserts nothing); a member reporting their own message, or a message of
an exempt member, does not count. When a message has `threshold` distinct reporters its
report turns `actioned` with a conditional update (two replicas on the same batch: one
wins) and the policy's `reports.action` is applied to the author through a case of its
own (`event_type: "report"`, `reporters`, `rule_ids: []`), deleting the message first
unless `reports.delete_message` is false.

The author of a replied-to message comes from tracking.py (Redis, kept 48 h+ for groups
with reports on). The pure parts (`report_keyword`, `claim_of`, `counts`) decide what
is a report; `record_reports` adds and flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.common.contracts.events import MessageCreated
from services.common.db import keyset_page, new_id, utcnow
from services.common.kafka.consumer import ConsumedEvent
from services.common.text import plain_form
from services.moderation.decisions import Grounds, case_actions, queue_actions
from services.moderation.models import (
    DEFAULT_MUTE_SECONDS,
    Case,
    Report,
    ReportPublic,
    ReportVote,
)
from services.moderation.rulebook import Rulebook
from services.moderation.specs import PolicySpec
from services.moderation.telemetry import REPORTS


def report_keyword(text: str, keywords: Sequence[str]) -> str | None:
    """The report keyword the text starts with (case-folded, traditional read as simplified,
    leading spaces ignored), or None. A keyword ending in a Latin letter or digit must end
    a word: `/report spam` reports, `/reporter` does not."""
    head = plain_form(text).casefold().lstrip()
    for keyword in keywords:
        folded = plain_form(keyword).casefold()
        if not folded or not head.startswith(folded):
            continue
        after = head[len(folded) : len(folded) + 1]
        if after and _latin_word(folded[-1]) and _latin_word(after):
            continue
        return keyword
    return None


def _latin_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True, slots=True)
class ReportClaim:
    """A message that reports another: who reports which message, with the group's policy."""

    event: MessageCreated
    message_id: str
    policy: PolicySpec

    @property
    def group_id(self) -> str:
        return self.event.group_id

    @property
    def reporter_id(self) -> str:
        return self.event.member_id


@dataclass(frozen=True, slots=True)
class ReportedMessage:
    """What moderation remembers of a recent message: its author, when, the author's name."""

    author_id: str
    message_at: datetime | None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class CountedReport:
    """A report that counts: the claim and the message it reports."""

    claim: ReportClaim
    reported: ReportedMessage


def claim_of(event: object, policy: PolicySpec) -> ReportClaim | None:
    """The report an event makes: a reply whose text starts with one of the group's report
    keywords (None when the group has reports off)."""
    if policy.reports is None or not isinstance(event, MessageCreated):
        return None
    target = event.data.reply_to
    if not target or target == event.data.message_id:
        return None
    if report_keyword(event.data.text, policy.reports.keywords) is None:
        return None
    return ReportClaim(event=event, message_id=target, policy=policy)


def counts(claim: ReportClaim, reported: ReportedMessage | None) -> bool:
    """Tell whether a report counts: the message is known, not the reporter's own, and its
    author is not exempt."""
    return (
        reported is not None
        and reported.author_id != claim.reporter_id
        and reported.author_id not in claim.policy.exempt_members
    )


def report_claims(
    events: Sequence[ConsumedEvent], rulebooks: Mapping[str, Rulebook]
) -> list[ReportClaim]:
    """The reports a batch of events makes, in order."""
    claims = []
    for item in events:
        event = item.event
        claim = claim_of(event, rulebooks[event.group_id].policy)
        if claim is not None:
            claims.append(claim)
    return claims


def _insert_ignoring(session: Session, table: type, row: dict[str, object], keys: list[str]) -> int:
    """INSERT … ON CONFLICT DO NOTHING; return how many rows it inserted (0 or 1)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(row).on_conflict_do_nothing(index_elements=keys)
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def _reporters(session: Session, group_id: str, message_ids: Sequence[str]) -> dict[str, list[str]]:
    query = (
        select(ReportVote.message_id, ReportVote.reporter_id)
        .where(ReportVote.group_id == group_id, col(ReportVote.message_id).in_(message_ids))
        .order_by(col(ReportVote.created_at), col(ReportVote.reporter_id))
    )
    found: dict[str, list[str]] = {m: [] for m in message_ids}
    for message_id, reporter in session.exec(query):
        found[message_id].append(reporter)
    return found


def _count_one(session: Session, report: CountedReport) -> str | None:
    """Store one report; return the report id when it just reached the threshold."""
    claim, reported = report.claim, report.reported
    now = utcnow()
    _insert_ignoring(
        session,
        Report,
        {
            "id": new_id("rep_"),
            "group_id": claim.group_id,
            "message_id": claim.message_id,
            "member_id": reported.author_id,
            "message_at": reported.message_at,
            "status": "open",
            "created_at": now,
        },
        ["group_id", "message_id"],
    )
    vote = {
        "group_id": claim.group_id,
        "message_id": claim.message_id,
        "reporter_id": claim.reporter_id,
        "event_id": claim.event.id[:256],
        "created_at": now,
    }
    if not _insert_ignoring(session, ReportVote, vote, ["group_id", "message_id", "reporter_id"]):
        REPORTS.labels("repeated").inc()
        return None
    REPORTS.labels("counted").inc()
    assert claim.policy.reports is not None
    reporters = session.exec(
        select(func.count()).where(
            ReportVote.group_id == claim.group_id, ReportVote.message_id == claim.message_id
        )
    ).one()
    if reporters < claim.policy.reports.threshold:
        return None
    report_id = session.exec(
        select(Report.id).where(
            Report.group_id == claim.group_id, Report.message_id == claim.message_id
        )
    ).one()
    # Conditional: of two transactions reaching the threshold together, one actions it.
    won = session.execute(
        update(Report)
        .where(col(Report.id) == report_id, col(Report.status) == "open")
        .values(status="actioned", actioned_at=now)
    )
    return report_id if won.rowcount == 1 else None  # type: ignore[attr-defined]


def _open_case(session: Session, report: CountedReport, reporters: list[str], topic: str) -> Case:
    claim, reported = report.claim, report.reported
    settings = claim.policy.reports
    assert settings is not None
    action = settings.action
    mute_seconds = settings.mute_seconds
    if action == "mute" and mute_seconds is None:
        mute_seconds = DEFAULT_MUTE_SECONDS
    case = Case(
        group_id=claim.group_id,
        member_id=reported.author_id,
        event_source=claim.event.source,
        event_type="report",
        message_id=claim.message_id,
        action=action,
        mute_seconds=mute_seconds if action in ("mute", "ban") else None,
        reporters=reporters,
        strike=action == "warn",
        occurred_at=claim.event.occurred_at,
    )
    session.add(case)
    grounds = Grounds(
        reason=f"reported by {len(reporters)} members: {', '.join(reporters)}"[:1000],
        label=f"{len(reporters)} 人举报",
        rule_id=None,
        source=claim.event.source,
        display_name=reported.display_name,
        message_at=reported.message_at,
    )
    actions = case_actions(
        session,
        case,
        policy=claim.policy,
        grounds=grounds,
        until=claim.event.occurred_at,
        deletes_message=settings.delete_message,
    )
    queue_actions(session, actions, topic)
    REPORTS.labels("actioned").inc()
    return case


def record_reports(*, session: Session, reports: Sequence[CountedReport], topic: str) -> list[Case]:
    """Count each report once; open a case (its actions queued for `topic`) for each message
    whose distinct reporters reach the threshold."""
    created: list[Case] = []
    for report in reports:
        report_id = _count_one(session, report)
        if report_id is None:
            continue
        claim = report.claim
        reporters = _reporters(session, claim.group_id, [claim.message_id])[claim.message_id]
        case = _open_case(session, report, reporters, topic)
        session.flush()
        session.execute(update(Report).where(col(Report.id) == report_id).values(case_id=case.id))
        created.append(case)
    session.flush()
    return created


def list_reports(
    *, session: Session, group_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[ReportPublic], str | None]:
    """Return a page of the group's reports (newest first) with their reporters, and the
    next cursor."""
    query = select(Report).where(Report.group_id == group_id)
    if status is not None:
        query = query.where(Report.status == status)
    rows, next_cursor = keyset_page(
        session, query, Report.id, limit=limit, cursor=cursor, descending=True
    )
    reporters = _reporters(session, group_id, [r.message_id for r in rows]) if rows else {}
    page = [
        ReportPublic.model_validate(r, update={"reporters": reporters[r.message_id]}) for r in rows
    ]
    return page, next_cursor
