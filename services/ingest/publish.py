"""Put a delivery's new events on the topic exactly once per dedup window, after Kafka's acks.

Each event's (source, id) key is claimed in Redis, the claimed events are produced in one
batch through the produce thread, and only once Kafka acknowledged them are the keys marked
seen (in the source's next Redis round, not waited for: `Dedup.mark_seen`); a failure
releases the claims so a retry can produce them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from services.common.contracts.events import Event, encode_event
from services.common.kafka.errors import BrokerUnavailable
from services.common.kafka.producer import OutgoingRecord
from services.common.redis_client import REDIS_ERRORS
from services.common.settings import Source
from services.ingest.dedup import Claim, Dedup, dedup_key
from services.ingest.deps import Runtime
from services.ingest.telemetry import count_events
from services.ingest.webhooks import Delivery, Receipt

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


def claim_ms(produce_timeout: float) -> int:
    """A claim outlives the produce deadline, so only a dead holder's claim ever expires."""
    return int((produce_timeout + 2) * 1000)


class StillInFlight(BrokerUnavailable):
    """A concurrent delivery of the same events has not been acknowledged in time."""


async def publish(*, source: Source, delivery: Delivery, runtime: Runtime) -> Receipt:
    """Claim the events' keys, produce the new ones in one batch, then mark them seen."""
    unique: dict[str, Event] = {}
    duplicates: list[Event] = []
    for event in delivery.events:
        if event.id in unique:
            duplicates.append(event)
        else:
            unique[event.id] = event
    dedup = runtime.dedup
    token = dedup.new_token()
    mine = await _claim(dedup, source.id, unique, duplicates, token, runtime.produce_timeout)
    claimed = set(mine)
    accepted = [event for event_id, event in unique.items() if event_id in claimed]
    records = [
        OutgoingRecord(runtime.topic, encode_event(event), event.group_id.encode())
        for event in accepted
    ]
    try:
        await runtime.producer.send_all(records, within=runtime.produce_timeout)
    except BaseException:
        await _release(dedup, source.id, mine, token)
        raise
    dedup.mark_seen(source.id, keys=[dedup_key(source.id, i) for i in mine])
    count_events(source, accepted, "accepted")
    count_events(source, duplicates, "duplicate")
    return Receipt(accepted=len(accepted), duplicates=len(duplicates), ignored=delivery.ignored)


async def _claim(
    dedup: Dedup,
    source_id: str,
    unique: dict[str, Event],
    duplicates: list[Event],
    token: str,
    produce_timeout: float,
) -> list[str]:
    """Claim every new event's key, waiting out other requests' claims; return the ids won.

    Events seen before are appended to `duplicates`; raise StillInFlight when another
    request still holds a claim after its produce deadline.
    """
    deadline = time.monotonic() + produce_timeout + 3
    mine: list[str] = []
    pending: Sequence[str] = list(unique)
    while pending:
        keys = [dedup_key(source_id, event_id) for event_id in pending]
        states = await dedup.claim(source_id, keys=keys, token=token)
        busy = []
        for event_id, state in zip(pending, states, strict=True):
            if state is Claim.MINE:
                mine.append(event_id)
            elif state is Claim.SEEN:
                duplicates.append(unique[event_id])
            else:
                busy.append(event_id)
        pending = busy
        if pending:
            if time.monotonic() > deadline:
                await _release(dedup, source_id, mine, token)
                raise StillInFlight("an earlier delivery of these events is still in flight")
            await asyncio.sleep(_POLL_SECONDS)
    return mine


async def _release(dedup: Dedup, source_id: str, event_ids: list[str], token: str) -> None:
    try:
        await dedup.release(keys=[dedup_key(source_id, i) for i in event_ids], token=token)
    except REDIS_ERRORS as exc:
        # The claims expire on their own shortly; the original error is what matters.
        log.warning("could not release claims: %s", type(exc).__name__)
