"""Put each new event on the topic exactly once per dedup window, answering only after acks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from services.common.contracts.events import Event, encode_event
from services.common.kafka.errors import BrokerUnavailable
from services.common.kafka.producer import OutgoingRecord
from services.ingest.dedup import Claim, Dedup, dedup_key
from services.ingest.producer import ProduceThread
from services.ingest.telemetry import DEDUP_COMMIT_FAILURES

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


def claim_ms(produce_timeout: float) -> int:
    """A claim outlives the produce deadline, so only a dead holder's claim ever expires."""
    return int((produce_timeout + 2) * 1000)


class StillInFlight(BrokerUnavailable):
    """A concurrent delivery of the same events has not been acknowledged in time."""


@dataclass(frozen=True)
class Published:
    """Which events went to Kafka now and which were duplicates."""

    accepted: list[Event]
    duplicates: list[Event]


async def publish_once(
    *,
    events: Sequence[Event],
    source_id: str,
    topic: str,
    dedup: Dedup,
    producer: ProduceThread,
    produce_timeout: float,
) -> Published:
    """Claim the events' keys, produce the new ones in one batch, then mark them seen."""
    unique: dict[str, Event] = {}
    duplicates: list[Event] = []
    for event in events:
        if event.id in unique:
            duplicates.append(event)
        else:
            unique[event.id] = event
    token = dedup.new_token()
    deadline = time.monotonic() + produce_timeout + 3
    mine: list[str] = []
    pending = list(unique)
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
    claimed = set(mine)
    accepted = [event for event_id, event in unique.items() if event_id in claimed]
    records = [
        OutgoingRecord(topic, encode_event(event), event.group_id.encode()) for event in accepted
    ]
    try:
        await producer.send_all(records, within=produce_timeout)
    except BaseException:
        await _release(dedup, source_id, mine, token)
        raise
    keys = [dedup_key(source_id, event_id) for event_id in mine]
    try:
        await dedup.mark_seen(source_id, keys=keys)
    except redis.RedisError as exc:
        # The events are in Kafka, so the answer stays 202; a redelivery within the claim's
        # life is still absorbed, later ones reach the idempotent consumers.
        DEDUP_COMMIT_FAILURES.inc()
        log.warning("acknowledged events not marked seen: %s", type(exc).__name__)
    return Published(accepted=accepted, duplicates=duplicates)


async def _release(dedup: Dedup, source_id: str, event_ids: list[str], token: str) -> None:
    try:
        await dedup.release(keys=[dedup_key(source_id, i) for i in event_ids], token=token)
    except redis.RedisError as exc:
        # The claims expire on their own shortly; the original error is what matters.
        log.warning("could not release claims: %s", type(exc).__name__)
