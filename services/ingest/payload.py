"""Validating what an adapter mapped against the contract: all events of a delivery or none.

The adapters (services/platforms/<platform>/inbound.py) read bodies with the readers of
`services.platforms.inbound`; `to_events` stamps and validates their canonical dicts.
Every refusal is an `InvalidPayload` whose details name the bad field, answered 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.common.contracts.events import Event, error_details, parse_event
from services.platforms.inbound import InvalidPayload, Loc


def to_events(
    raws: Sequence[dict[str, Any]],
    *,
    source_id: str,
    received_at: datetime,
    locs: Sequence[Loc],
) -> list[Event]:
    """Validate canonical event dicts, stamping source and received_at; all or nothing."""
    events: list[Event] = []
    details: list[dict[str, Any]] = []
    for raw, loc in zip(raws, locs, strict=True):
        try:
            events.append(parse_event({**raw, "source": source_id, "received_at": received_at}))
        except ValidationError as exc:
            details += error_details(exc, ("body", *loc))
    if details:
        raise InvalidPayload(details)
    return events
