"""The campaigns consumer group: participation from community.events.v1, grants via the outbox."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.campaigns.models import utcnow
from services.campaigns.outbox import publish_pending
from services.campaigns.participation import apply_events
from services.campaigns.rewards import Effects
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
    for attempt in range(RACE_RETRIES):
        effects = Effects()
        try:
            with Session(engine) as session:
                apply_events(
                    session=session,
                    events=[e.event for e in events],
                    tz=settings.tz,
                    now=utcnow(),
                    effects=effects,
                )
                session.commit()
            break
        except IntegrityError:
            # Another process committed the same events first (a rebalance overlap):
            # the retry finds them processed.
            if attempt == RACE_RETRIES - 1:
                raise
            log.info("campaigns batch raced another consumer; retrying")
    effects.record()
    if effects.grants:  # anything else left in the outbox goes with the scheduler's next tick
        publish_pending(engine=engine, producer=producer, settings=settings)
