"""Server-side bitmap algebra of one query, sent to Redis as a single pipeline.

Unions and intersections go into scratch keys of the group (same hash slot),
which expire after a minute even if the client dies before deleting them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import redis

from services.metrics.keys import GroupKeys

SCRATCH_TTL_SECONDS = 60


class BitPlan:
    """Queue BITOP/BITCOUNT commands, then run them in one round trip."""

    def __init__(self, client: redis.Redis, keys: GroupKeys) -> None:
        self._pipe = client.pipeline(transaction=False)
        self._keys = keys
        self._tag = uuid.uuid4().hex
        self._scratch: list[str] = []
        self._queued = 0
        self._and_key: str | None = None
        self._results: list[Any] | None = None

    def _queue(self, *args: Any) -> int:
        self._pipe.execute_command(*args)
        self._queued += 1
        return self._queued - 1

    def _new_scratch(self) -> str:
        key = self._keys.temp(f"{self._tag}:{len(self._scratch)}")
        self._scratch.append(key)
        return key

    def _into(self, dest: str, op: str, sources: Sequence[str]) -> str:
        self._queue("BITOP", op, dest, *sources)
        self._queue("EXPIRE", dest, SCRATCH_TTL_SECONDS)
        return dest

    def union(self, sources: Sequence[str]) -> str:
        """Return a key holding the OR of the sources (the source itself when alone)."""
        if len(sources) == 1:
            return sources[0]
        return self._into(self._new_scratch(), "OR", sources)

    def accumulate(self, dest: str, sources: Sequence[str]) -> None:
        """OR the sources into a scratch key in place."""
        self._queue("BITOP", "OR", dest, dest, *sources)

    def scratch_union(self, sources: Sequence[str]) -> str:
        """Return a new scratch key holding the OR of the sources (for accumulate)."""
        return self._into(self._new_scratch(), "OR", sources)

    def count(self, key: str) -> int:
        """Queue the population count of a key; return its slot for result()."""
        return self._queue("BITCOUNT", key)

    def count_and(self, *sources: str) -> int:
        """Queue the population count of the AND of the sources; return its slot."""
        if len(sources) == 1:
            return self.count(sources[0])
        if self._and_key is None:
            self._and_key = self._into(self._new_scratch(), "AND", sources)
        else:
            self._queue("BITOP", "AND", self._and_key, *sources)
        return self.count(self._and_key)

    def run(self) -> None:
        """Send everything, then delete the scratch keys."""
        if self._scratch:
            self._queue("DEL", *self._scratch)
        self._results = self._pipe.execute()

    def result(self, slot: int) -> int:
        """Return the integer answer of a queued count."""
        assert self._results is not None, "run() first"
        return int(self._results[slot])
