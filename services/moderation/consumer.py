"""The moderation consumer group: judge each event of a poll, record cases, publish actions.

Per poll: one pipelined Redis GET of the batch's rule-set versions (stale rulebooks
are rebuilt), one Redis pipeline for windows/joins/names, one database transaction
for the batch's cases and queued actions (deduplicated on the event), then the new
actions leave the outbox in one Kafka send before the poll's offsets are committed.
A redelivered batch finds its cases and adds nothing; what a crash left queued, the
outbox relay publishes. The same transaction keeps each group's latest source where it
changed (sources.py) and counts the batch's member reports (reports.py: the reported
messages' authors are read from Redis in one more round trip, only when there are any).
It also hands every event to gatekeeping.py (the member roster, join requests,
blocklisted joiners, newcomer verification), so each poll writes the roster once.

Batch-first, because the consumer is CPU-bound and a poll under load holds from one to
hundreds of events: a poll's database work is a fixed handful of statements whatever its
size — the events already judged and the members' restrictions (only when something
matched), the cases, their actions and their outbox records (one multi-row INSERT each,
cases.record_decisions), the roster upsert, the pending verifications of the batch's
members — then one commit and one publish.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import Engine
from sqlmodel import Session

from services.common.kafka.consumer import ConsumedEvent
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings
from services.moderation import gatekeeping
from services.moderation.cases import Decision, record_decisions
from services.moderation.models import Case
from services.moderation.outbox import publish_actions
from services.moderation.reports import CountedReport, counts, record_reports, report_claims
from services.moderation.rulebook import Rulebook
from services.moderation.rulebook_cache import RulebookCache
from services.moderation.sources import SourceTracker
from services.moderation.specs import Verdict
from services.moderation.telemetry import (
    DECISIONS,
    EVALUATION_SECONDS,
    MESSAGES_EVALUATED,
    REPORTS,
)
from services.moderation.tracking import Tracker


def judge(
    events: list[ConsumedEvent], *, by_group: Mapping[str, Rulebook], tracker: Tracker
) -> list[Decision]:
    """Run each event through its group's rulebook; return the events something matched."""
    items = [(e.event, by_group[e.event.group_id]) for e in events]
    prepared = tracker.prepare(items)
    decisions: list[Decision] = []
    for (event, rulebook), judged in zip(items, prepared, strict=True):
        if judged is None:
            continue
        subject, context = judged
        started = time.perf_counter()
        verdict = rulebook.evaluate(subject, context)
        EVALUATION_SECONDS.observe(time.perf_counter() - started)
        if event.type == "message.created":
            MESSAGES_EVALUATED.inc()
        if verdict:
            decisions.append(Decision(event, verdict, rulebook.policy))
    return decisions


def handle_batch(
    events: list[ConsumedEvent],
    *,
    db: Engine,
    settings: Settings,
    producer: ProducerHandle,
    rulebooks: RulebookCache,
    tracker: Tracker,
    sources: SourceTracker,
) -> None:
    """Apply one poll's events: commit their cases and queued actions (and the groups'
    latest sources where they changed), then publish the actions."""
    by_group = rulebooks.rulebooks_for(e.event.group_id for e in events)
    decisions = judge(events, by_group=by_group, tracker=tracker)
    reports = _counted_reports(events, by_group=by_group, tracker=tracker)
    changed = sources.changed(e.event for e in events)
    with Session(db, expire_on_commit=False) as session:
        sources.write(session, changed)
        created = record_decisions(
            session=session, decisions=decisions, topic=settings.topic_moderation_actions
        )
        reported = record_reports(
            session=session, reports=reports, topic=settings.topic_moderation_actions
        )
        # Every event: the roster, join requests, blocklisted joiners, verification.
        gated = gatekeeping.apply(
            session=session,
            events=[e.event for e in events],
            topic=settings.topic_moderation_actions,
        )
        session.commit()
    sources.remember(changed)
    _count(decisions, created)
    # Enforced verdicts queue actions even without a new case (a burst's deletions).
    if gated or reported or any(d.verdict.matched for d in decisions):
        publish_actions(db=db, producer=producer)


def _counted_reports(
    events: list[ConsumedEvent], *, by_group: Mapping[str, Rulebook], tracker: Tracker
) -> list[CountedReport]:
    """The batch's reports that count (after tracker.prepare kept the batch's own authors)."""
    claims = report_claims(events, by_group)
    if not claims:
        return []
    found = tracker.reported_messages(
        [(c.group_id, c.message_id, c.event.occurred_at) for c in claims]
    )
    counted = []
    for claim, reported in zip(claims, found, strict=True):
        if reported is not None and counts(claim, reported):
            counted.append(CountedReport(claim, reported))
        else:
            REPORTS.labels("ignored").inc()
    return counted


def _count(decisions: list[Decision], created: list[Case]) -> None:
    verdicts: dict[tuple[str, str | None, str | None], Verdict] = {}
    for d in decisions:
        verdicts.setdefault((d.event.group_id, d.event.source, d.event.id), d.verdict)
    for case in created:
        verdict = verdicts[(case.group_id, case.event_source, case.event_id)]
        for match in (*verdict.matched, *verdict.shadow_matched):
            mode = "shadow" if match.shadow else "enforce"
            DECISIONS.labels(match.kind, match.action, mode).inc()
