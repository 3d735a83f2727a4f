"""Put each new event on the topic exactly once per dedup window, answering only after acks."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from services.common.bus import BrokerUnavailable, OutgoingRecord, ProducerHandle
from services.common.events import Event, encode_event
from services.ingest import dedup
from services.ingest.dedup import Claim
from services.ingest.telemetry import DEDUP_COMMIT_FAILURES

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


class StillInFlight(BrokerUnavailable):
    """A concurrent delivery of the same events has not been acknowledged in time."""


@dataclass(frozen=True)
class Published:
    """Which events went to Kafka now and which were duplicates."""

    accepted: list[Event]
    duplicates: list[Event]


def publish_once(
    *,
    events: Sequence[Event],
    source_id: str,
    topic: str,
    client: redis.Redis,
    producer: ProducerHandle,
    produce_timeout: float,
    ttl_seconds: int,
) -> Published:
    """Claim the events' keys, produce the new ones in one batch, then mark them seen."""
    unique: dict[str, Event] = {}
    duplicates: list[Event] = []
    for event in events:
        if event.id in unique:
            duplicates.append(event)
        else:
            unique[event.id] = event
    token = uuid.uuid4().hex
    # A claim outlives the produce deadline, so only a dead holder's claim ever expires.
    claim_ms = int((produce_timeout + 2) * 1000)
    deadline = time.monotonic() + produce_timeout + 3
    mine: list[str] = []
    pending = list(unique)
    while pending:
        keys = [dedup.dedup_key(source_id, event_id) for event_id in pending]
        states = dedup.claim(client, keys=keys, token=token, claim_ms=claim_ms)
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
                _release(client, source_id, mine, token)
                raise StillInFlight("an earlier delivery of these events is still in flight")
            time.sleep(_POLL_SECONDS)
    claimed = set(mine)
    accepted = [event for event_id, event in unique.items() if event_id in claimed]
    records = [
        OutgoingRecord(topic, encode_event(event), event.group_id.encode()) for event in accepted
    ]
    try:
        producer.send_all(records, timeout=produce_timeout)
    except BaseException:
        _release(client, source_id, mine, token)
        raise
    keys = [dedup.dedup_key(source_id, event_id) for event_id in mine]
    try:
        dedup.mark_seen(client, keys=keys, ttl_seconds=ttl_seconds)
    except redis.RedisError as exc:
        # The events are in Kafka, so the answer stays 202; a redelivery within the claim's
        # life is still absorbed, later ones reach the idempotent consumers.
        DEDUP_COMMIT_FAILURES.inc()
        log.warning("acknowledged events not marked seen: %s", type(exc).__name__)
    return Published(accepted=accepted, duplicates=duplicates)


def _release(client: redis.Redis, source_id: str, event_ids: list[str], token: str) -> None:
    try:
        dedup.release(client, keys=[dedup.dedup_key(source_id, i) for i in event_ids], token=token)
    except redis.RedisError as exc:
        # The claims expire on their own shortly; the original error is what matters.
        log.warning("could not release claims: %s", type(exc).__name__)
