"""Reading one webhook delivery: verify it, map the platform's payload, validate the events."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.contracts.events import Event, utcnow
from services.common.settings import Source
from services.ingest.payload import to_events
from services.ingest.telemetry import count_ignored
from services.platforms.feishu import inbound as feishu
from services.platforms.generic import inbound as generic
from services.platforms.inbound import Adapter
from services.platforms.onebot import inbound as onebot
from services.platforms.slack import inbound as slack
from services.platforms.telegram import inbound as telegram

# Which platform's inbound adapter reads a source's webhooks (services/platforms/<p>/inbound.py).
ADAPTERS: dict[str, Adapter] = {
    "generic": generic.adapt,
    "slack": slack.adapt,
    "telegram": telegram.adapt,
    "feishu": feishu.adapt,
    "onebot": onebot.adapt,
}


@dataclass(frozen=True)
class Receipt:
    """What the webhook's sender is told."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    challenge: dict[str, Any] | None = None


@dataclass(frozen=True)
class Delivery:
    """A verified delivery's canonical events, ready to deduplicate and produce."""

    events: list[Event]
    ignored: int


def read_delivery(*, source: Source, headers: Mapping[str, str], body: bytes) -> Receipt | Delivery:
    """Verify and map one delivery (CPU only, no I/O); raise Unauthenticated or InvalidPayload.

    Returns the final receipt when there is nothing to produce (a challenge, only ignored
    platform events), else the validated events.
    """
    adapted = ADAPTERS[source.platform](source=source, headers=headers, body=body, now=time.time())
    if adapted.challenge is not None:
        return Receipt(challenge=adapted.challenge)
    if adapted.ignored:
        count_ignored(source, adapted.ignored)
    if not adapted.raws:
        return Receipt(ignored=adapted.ignored)
    events = to_events(adapted.raws, source_id=source.id, received_at=utcnow(), locs=adapted.locs)
    return Delivery(events, adapted.ignored)
