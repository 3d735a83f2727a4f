"""Reading a platform's JSON payload: fields by path, canonical events, errors per bad field.

The adapters read bodies with `parse_object`, `require`, `optional` and `from_unix`;
`to_events` validates what they map against the contract. Every refusal is an
`InvalidPayload` whose details name the bad field, answered 422 like FastAPI's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from services.common.contracts.events import Event, error_details, parse_event

Loc = tuple[str | int, ...]


class InvalidPayload(ValueError):
    """The body is not a valid payload (answered 422 with FastAPI-style details)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{d['loc']}: {d['msg']}" for d in details))
        self.details = details


def invalid(loc: Loc, msg: str, kind: str = "value_error") -> InvalidPayload:
    """Build the error for one bad field."""
    return InvalidPayload([{"loc": ["body", *loc], "msg": msg, "type": kind}])


def parse_object(body: bytes) -> dict[str, Any]:
    """Decode the body as a JSON object."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid((), f"body is not valid JSON: {exc}", "json_invalid") from exc
    if not isinstance(obj, dict):
        raise invalid((), "body must be a JSON object", "dict_type")
    return obj


def require(obj: Any, *path: str | int, kind: type | tuple[type, ...] = str) -> Any:
    """Return obj[path…], which must exist and have the given type."""
    value = obj
    for depth, part in enumerate(path):
        container_ok = isinstance(value, dict) if isinstance(part, str) else isinstance(value, list)
        if not container_ok:
            raise invalid(path[:depth], "wrong type", "type_error")
        try:
            value = value[part]
        except (KeyError, IndexError):
            raise invalid(path[: depth + 1], "Field required", "missing") from None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise invalid(path, f"must be {getattr(kind, '__name__', kind)}", "type_error")
    return value


def optional(obj: Any, *path: str | int) -> Any:
    """Return obj[path…], or None when any step is missing."""
    value = obj
    for part in path:
        if isinstance(part, str) and isinstance(value, dict):
            value = value.get(part)
        elif isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value):
            value = value[part]
        else:
            return None
    return value


def from_unix(seconds: float, loc: Loc = ()) -> str:
    """Return a unix time (seconds) as an ISO-8601 UTC timestamp; loc names it if invalid."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        raise invalid(loc, "not a valid unix time") from None


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
