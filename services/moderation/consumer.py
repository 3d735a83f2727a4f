"""The moderation consumer group: judge each event of a poll, record cases, publish actions.

Per poll: one pipelined Redis GET of the batch's rule-set versions (stale engines
are rebuilt), one Redis pipeline for windows/joins/names, one database transaction
for the batch's cases and queued actions (deduplicated on the event), then one
Kafka send for the new actions. A redelivered batch finds its cases and adds nothing.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine
from sqlmodel import Session

from services.common.kafka.consumer import ConsumedEvent
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings
from services.moderation.cases import Decision, record_decisions
from services.moderation.outbox import publish_pending
from services.moderation.rulesets import EngineCache
from services.moderation.telemetry import DECISIONS, EVALUATION_SECONDS, MESSAGES_EVALUATED
from services.moderation.tracking import Tracker


def handle_batch(
    events: list[ConsumedEvent],
    *,
    db: Engine,
    settings: Settings,
    producer: ProducerHandle,
    engines: EngineCache,
    tracker: Tracker,
) -> None:
    """Apply one poll's events."""
    by_group = engines.engines_for(e.event.group_id for e in events)
    items = [(e.event, by_group[e.event.group_id]) for e in events]
    prepared = tracker.prepare(items)
    decisions: list[Decision] = []
    for (event, engine), judged in zip(items, prepared, strict=True):
        if judged is None:
            continue
        subject, context = judged
        started = time.perf_counter()
        verdict = engine.evaluate(subject, context)
        EVALUATION_SECONDS.observe(time.perf_counter() - started)
        if event.type == "message.created":
            MESSAGES_EVALUATED.inc()
        if verdict:
            decisions.append(Decision(event, verdict, engine.policy))
    if not decisions:
        return
    with Session(db, expire_on_commit=False) as session:
        created = record_decisions(session=session, decisions=decisions)
    for case in created:
        verdict = next(d.verdict for d in decisions if d.event.id == case.event_id)
        for match in (*verdict.matched, *verdict.shadow_matched):
            mode = "shadow" if match.shadow else "enforce"
            DECISIONS.labels(match.kind, match.action, mode).inc()
    if any(not case.shadow for case in created):
        publish_pending(db=db, producer=producer, topic=settings.topic_moderation_actions)
