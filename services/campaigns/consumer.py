"""The campaigns consumer group: participation from community.events.v1, grants via the outbox."""

from __future__ import annotations

import logging

import tenacity
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.participation import apply_events
from services.common.db import utcnow
from services.common.kafka.consumer import ConsumedEvent
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings

log = logging.getLogger(__name__)

RACE_RETRIES = 5


def handle_batch(
    events: list[ConsumedEvent],
    *,
    engine: Engine,
    producer: ProducerHandle,
    settings: Settings,
) -> None:
    """Apply one poll's events in one transaction, then publish the grants it queued."""
    topics = Topics.of(settings)
    # A racing consumer that committed the same events first (a rebalance overlap) makes
    # this one's insert fail: the retry finds them processed.
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(IntegrityError),
        stop=tenacity.stop_after_attempt(RACE_RETRIES),
        before_sleep=lambda _: log.info("campaigns batch raced another consumer; retrying"),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            effects = Effects(topics)
            with Session(engine) as session:
                apply_events(
                    session=session,
                    events=[e.event for e in events],
                    tz=settings.tz,
                    now=utcnow(),
                    effects=effects,
                )
                session.commit()
    effects.record()
    if effects.grants:  # anything else left in the outbox goes with the scheduler's next tick
        publish(engine=engine, producer=producer, topics=topics)
