"""The generic format: one canonical event, or {"events": [...]} with up to 1000 of them.

Signed with X-Qunyun-Timestamp and X-Qunyun-Signature (`v1=` hex HMAC-SHA256 of
`timestamp.body`); several comma-separated signatures are allowed for key rotation.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.common.settings import Source
from services.platforms.inbound import Adapted, Unauthenticated, invalid, parse_object
from services.platforms.signing import check_fresh, header, hmac_hex, same

MAX_BATCH = 1000


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Qunyun-Signature value for a body sent at a timestamp."""
    return "v1=" + hmac_hex(secret, timestamp.encode() + b"." + body)


def verify_generic(*, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Check X-Qunyun-Timestamp and X-Qunyun-Signature (v1, several allowed for key rotation)."""
    timestamp = header(headers, "x-qunyun-timestamp")
    given = header(headers, "x-qunyun-signature")
    check_fresh(timestamp, now=now)
    expected = generic_signature(secret, timestamp, body)
    if not any(same(expected, part.strip()) for part in given.split(",")):
        raise Unauthenticated("signature does not match")


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
