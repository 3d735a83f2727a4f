"""Platform adapters: each verifies its platform's webhook and maps it to canonical events.

Every adapter exposes `adapt(*, source, headers, body, now) -> Adapted` and raises
verify.Unauthenticated (401) or payload.InvalidPayload (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.common.settings import Source
from services.ingest.payload import Loc


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
