"""What every inbound webhook adapter shares: its answer, its refusals, its payload readers.

Each platform's `inbound.adapt(*, source, headers, body, now) -> Adapted` verifies the
platform's proof (raising `Unauthenticated`, answered 401) and maps the payload to
canonical event dicts (raising `InvalidPayload`, answered 422 with FastAPI-style details
naming the bad field). Ingest owns the route, the registry of adapters, validation
against the contract, dedup and produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from services.common.settings import Source

Loc = tuple[str | int, ...]


class Unauthenticated(Exception):
    """The request does not prove it came from the source (answered 401)."""


class InvalidPayload(ValueError):
    """The body is not a valid payload (answered 422 with FastAPI-style details)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{d['loc']}: {d['msg']}" for d in details))
        self.details = details


@dataclass
class Adapted:
    """What a webhook carried: canonical event dicts, ignored platform events, or a challenge."""

    raws: list[dict[str, Any]] = field(default_factory=list)
    locs: list[Loc] = field(default_factory=list)
    ignored: int = 0
    challenge: dict[str, Any] | None = None

    def add(self, raw: dict[str, Any], loc: Loc = ()) -> None:
        """Add one canonical event dict (without source and received_at)."""
        self.raws.append(raw)
        self.locs.append(loc)


class Adapter(Protocol):
    def __call__(
        self, *, source: Source, headers: Mapping[str, str], body: bytes, now: float
    ) -> Adapted: ...


class QueryAdapter(Protocol):
    """An adapter of a platform that signs the query string, not a header (WeCom)."""

    def __call__(
        self, *, source: Source, query: Mapping[str, str], body: bytes, now: float
    ) -> Adapted: ...


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
