"""Reading one webhook delivery: verify it, map the platform's payload, validate the events."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import PlainTextResponse, Response

from services.common.contracts.events import Event, utcnow
from services.common.settings import Source
from services.ingest.payload import to_events
from services.ingest.telemetry import count_ignored
from services.platforms.feishu import inbound as feishu
from services.platforms.generic import inbound as generic
from services.platforms.inbound import Adapter, QueryAdapter
from services.platforms.onebot import inbound as onebot
from services.platforms.slack import inbound as slack
from services.platforms.telegram import inbound as telegram
from services.platforms.wecom import enrich as wecom_enrich
from services.platforms.wecom import inbound as wecom

# Which platform's inbound adapter reads a source's webhooks (services/platforms/<p>/inbound.py).
ADAPTERS: dict[str, Adapter] = {
    "generic": generic.adapt,
    "slack": slack.adapt,
    "telegram": telegram.adapt,
    "feishu": feishu.adapt,
    "onebot": onebot.adapt,
}
# Platforms that sign the query string instead of a header (WeCom: msg_signature, timestamp,
# nonce); their GET URL check answers the decrypted echostr; joins are enriched with the
# platform's API (awaited, bounded) between mapping and producing.
QUERY_ADAPTERS: dict[str, QueryAdapter] = {"wecom": wecom.adapt}
URL_CHECKS: dict[str, Callable[..., str]] = {"wecom": wecom.verify_url}
# Platforms answered their own way instead of with the JSON receipt, once Kafka acknowledged
# (errors stay JSON): WeCom retries anything but 200 `success`; a OneBot implementation
# reads a JSON answer as a "quick operation", so it gets 204 and nothing to act on.
ANSWERS: dict[str, Callable[[], Response]] = {
    "wecom": lambda: PlainTextResponse("success"),
    "onebot": lambda: Response(status_code=204),
}
ENRICHERS: dict[str, Callable[..., Awaitable[list[Event]]]] = {"wecom": wecom_enrich.enrich_joins}
PLATFORMS = frozenset(ADAPTERS) | frozenset(QUERY_ADAPTERS)


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


def read_delivery(
    *,
    source: Source,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> Receipt | Delivery:
    """Verify and map one delivery (CPU only, no I/O); raise Unauthenticated or InvalidPayload.

    Returns the final receipt when there is nothing to produce (a challenge, only ignored
    platform events), else the validated events.
    """
    now = time.time()
    if source.platform in QUERY_ADAPTERS:
        adapt = QUERY_ADAPTERS[source.platform]
        adapted = adapt(source=source, query=query or {}, body=body, now=now)
    else:
        adapted = ADAPTERS[source.platform](source=source, headers=headers, body=body, now=now)
    if adapted.challenge is not None:
        return Receipt(challenge=adapted.challenge)
    if adapted.ignored:
        count_ignored(source, adapted.ignored)
    if not adapted.raws:
        return Receipt(ignored=adapted.ignored)
    events = to_events(adapted.raws, source_id=source.id, received_at=utcnow(), locs=adapted.locs)
    return Delivery(events, adapted.ignored)


async def enrich(*, source: Source, delivery: Delivery) -> Delivery:
    """The delivery with its events completed from the platform's API, where ingest does that."""
    enricher = ENRICHERS.get(source.platform)
    if enricher is None:
        return delivery
    return Delivery(await enricher(delivery.events, source=source), delivery.ignored)
