"""The generic format: one canonical event, or {"events": [...]} with up to 1000 of them."""

from __future__ import annotations

from collections.abc import Mapping

from services.common.settings import Source
from services.ingest.adapters import Adapted
from services.ingest.payload import invalid, parse_object
from services.ingest.verify import verify_generic

MAX_BATCH = 1000


def adapt(*, source: Source, headers: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Verify the HMAC signature and take the events as they are."""
    verify_generic(secret=source.secret, headers=headers, body=body, now=now)
    payload = parse_object(body)
    adapted = Adapted()
    if "events" not in payload:
        adapted.add(payload)
        return adapted
    events = payload["events"]
    if not isinstance(events, list):
        raise invalid(("events",), "events must be a list", "list_type")
    if not events:
        raise invalid(("events",), "events must not be empty", "too_short")
    if len(events) > MAX_BATCH:
        raise invalid(("events",), f"at most {MAX_BATCH} events per request", "too_long")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise invalid(("events", index), "each event must be an object", "dict_type")
        adapted.add(event, ("events", index))
    return adapted
