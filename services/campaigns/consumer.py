"""The campaigns consumer groups: `campaigns` (participation from community.events.v1,
grants via the outbox), `campaigns-receipts` (delivery outcomes of the notifications
from delivery.receipts.v1) and `campaigns-actions` (moderation's mutes, kicks and bans
from moderation.actions.v1: eligibility exclusions)."""

from __future__ import annotations

import logging

import tenacity
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.campaigns import autoreply, eligibility, telemetry, welcome
from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.participation import apply_events
from services.campaigns.posted import apply_receipts
from services.campaigns.running import CampaignCache
from services.common.contracts.actions import ModerationAction
from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import utcnow
from services.common.kafka.consumer import ConsumedEvent, Record
from services.common.kafka.producer import ProducerHandle
from services.common.outbox import OutboxRelay
from services.common.settings import Settings

log = logging.getLogger(__name__)

RACE_RETRIES = 5
EVENTS_POLL_RECORDS = 2000


def events_settings(settings: Settings) -> Settings:
    """The settings of the `campaigns` events consumer: polls of up to EVENTS_POLL_RECORDS
    events, unless KAFKA_MAX_POLL_RECORDS is set.

    Most of what a poll costs is per poll, not per event: its statements (the same ones
    for 10 events or 2,000), the commit's WAL flush, the relay's round and the offset
    commit; a topic that is not behind hands over what it has, so only a backlog makes the
    polls larger (2,000 instead of 500: −15 % of the process's CPU per event and −25 % of
    PostgreSQL's in the benchmark)."""
    if "kafka_max_poll_records" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"kafka_max_poll_records": EVENTS_POLL_RECORDS})


def handle_batch(
    events: list[ConsumedEvent],
    *,
    engine: Engine,
    producer: ProducerHandle,
    settings: Settings,
    cache: CampaignCache | None = None,
    relay: OutboxRelay | None = None,
) -> None:
    """Apply one poll's events in one transaction, then have the grants and replies it
    queued published: by waking `relay` (the service's), else here before returning.

    The poll's campaigns are read once (through `cache`, the process's campaign rows, when
    given) and shared by every kind's handler."""
    topics = Topics.of(settings)
    # A racing consumer that committed the same events first (a rebalance overlap) makes
    # this one's insert fail: the retry finds them processed.
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(IntegrityError),
        stop=tenacity.stop_after_attempt(RACE_RETRIES),
        before_sleep=lambda _: log.info("campaigns batch raced another consumer; retrying"),
        reraise=True,
    )
    batch = [e.event for e in events]
    campaigns = cache or CampaignCache()
    for attempt in retrying:
        with attempt:
            effects = Effects(topics)
            with Session(engine) as session:
                running = campaigns.running(session=session, events=batch)
                apply_events(
                    session=session,
                    events=batch,
                    tz=settings.tz,
                    now=utcnow(),
                    effects=effects,
                    running=running,
                )
                welcome.record_joins(session=session, events=batch, running=running)
                autoreply.answer(
                    session=session, events=batch, now=utcnow(), effects=effects, running=running
                )
                session.commit()
    effects.record()
    # Grants and replies go out at once; anything else with the scheduler's next tick.
    if effects.grants or effects.notified:
        if relay is not None:
            relay.wake()
        else:
            publish(engine=engine, producer=producer, topics=topics)


def handle_receipts(records: list[Record], *, engine: Engine, settings: Settings) -> None:
    """Record the delivery outcome of campaigns' notifications from one poll of receipts.

    Idempotent: a receipt only replaces an older outcome. A record that is not a receipt
    raises, and the consumer loop dead-letters it alone.
    """
    receipts = [DeliveryReceipt.model_validate_json(r.value or b"") for r in records]
    with Session(engine) as session:
        taken = apply_receipts(
            session=session, receipts=receipts, topic=settings.topic_campaign_notifications
        )
        session.commit()
    for receipt in taken:
        telemetry.RECEIPTS.labels(receipt.outcome).inc()


def handle_actions(records: list[Record], *, engine: Engine) -> None:
    """Record the exclusions moderation's actions make, from one poll, in one transaction.

    Idempotent: a replay in topic order leaves the same exclusions. A record that is not an
    action raises, and the consumer loop dead-letters it alone.
    """
    actions = [ModerationAction.model_validate_json(r.value or b"") for r in records]
    with Session(engine) as session:
        added = eligibility.apply_actions(session=session, actions=actions)
        session.commit()
    if added:
        telemetry.EXCLUSIONS.labels("moderation").inc(added)
