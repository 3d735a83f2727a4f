"""Server-side bitmap algebra of one query: BITOPs and BITCOUNTs run by a small Lua loop.

A query's operations are queued, then sent as a few script calls (chunks) in one
pipeline, so thousands of operations cost one round trip and little client work,
while Redis can serve other clients between chunks. Unions and intersections go
into scratch keys of the group (same hash slot) that expire after a minute even
if the client dies before the final DEL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from importlib.resources import files

import redis

from services.common.redis_client import queue_script, run_pipeline
from services.metrics.keys import GroupKeys

SCRATCH_TTL_SECONDS = 60
OPS_PER_CALL = 2000

# lua/run.lua runs one chunk: ARGV[1] the scratch TTL, ARGV[2] the program (one operation
# per line naming keys by number), ARGV[3...] the keys.
RUN_LUA = (files("services.metrics") / "lua" / "run.lua").read_text(encoding="utf-8")


class BitPlan:
    """Queue bitmap operations on a group's keys, then run them in one round trip."""

    def __init__(self, client: redis.Redis, keys: GroupKeys) -> None:
        self._client = client
        self._keys = keys
        self._script = client.register_script(RUN_LUA)
        self._tag = uuid.uuid4().hex
        self._ops: list[str] = []
        self._names: dict[str, int] = {}
        self._scratch: list[str] = []
        self._counts = 0
        self._and_key: str | None = None
        self._zero: str | None = None
        self._results: list[int] | None = None

    def _line(self, op: str, *keys: str) -> str:
        indexes = (self._names.setdefault(key, len(self._names) + 1) for key in keys)
        return " ".join([op, *map(str, indexes)])

    def _op(self, op: str, *keys: str) -> None:
        self._ops.append(self._line(op, *keys))

    def _new_scratch(self) -> str:
        key = self._keys.temp(f"{self._tag}:{len(self._scratch)}")
        self._scratch.append(key)
        return key

    def _into(self, dest: str, op: str, sources: Sequence[str]) -> str:
        self._op(op, dest, *sources)
        self._op("E", dest)
        return dest

    def union(self, sources: Sequence[str]) -> str:
        """Return a key holding the OR of the sources (the source itself when alone)."""
        if len(sources) == 1:
            return sources[0]
        return self._into(self._new_scratch(), "OR", sources)

    def padded_union(self, sources: Sequence[str]) -> str:
        """Return a new scratch key holding the OR of the sources, as long as the member table.

        BITOP only runs word-wise while every input is long enough; giving all the
        bitmaps of a query the same length keeps its many ANDs on that fast path.
        """
        if self._zero is None:
            self._zero = self._new_scratch()
            self._op("Z", self._zero, self._keys.seq)
            self._op("E", self._zero)
        return self._into(self._new_scratch(), "OR", [self._zero, *sources])

    def accumulate(self, dest: str, sources: Sequence[str]) -> None:
        """OR the sources into a scratch key (from padded_union) in place."""
        self._op("OR", dest, dest, *sources)

    def restrict(self, dest: str, mask: str) -> None:
        """AND a mask into a scratch key (from padded_union) in place."""
        self._op("AND", dest, dest, mask)

    def count(self, key: str) -> int:
        """Queue the population count of a key; return its slot for result()."""
        self._op("C", key)
        return self._next_count()

    def _next_count(self) -> int:
        self._counts += 1
        return self._counts - 1

    def count_and(self, *sources: str) -> int:
        """Queue the population count of the AND of the sources; return its slot."""
        if len(sources) == 1:
            return self.count(sources[0])
        if self._and_key is None:
            self._and_key = self._into(self._new_scratch(), "AND", sources)
            return self.count(self._and_key)
        self._op("X", self._and_key, *sources)
        return self._next_count()

    def calls(self) -> list[list[str | int]]:
        """Return the script calls' arguments: the operations in chunks, then the scratch DEL."""
        ops = self._ops
        if self._scratch:
            ops = [*ops, self._line("D", *self._scratch)]
        programs = ["\n".join(ops[i : i + OPS_PER_CALL]) for i in range(0, len(ops), OPS_PER_CALL)]
        names = list(self._names)
        return [[SCRATCH_TTL_SECONDS, program, *names] for program in programs]

    def run(self) -> None:
        """Send every call in one pipeline; the last one deletes the scratch keys."""
        pipe = self._client.pipeline(transaction=False)
        route = [self._keys.ids]  # any key of the group: the call goes to the group's slot
        for args in self.calls():
            queue_script(pipe, self._script, keys=route, args=args)
        self._results = [int(n) for chunk in run_pipeline(pipe) for n in chunk]

    def result(self, slot: int) -> int:
        """Return the integer answer of a queued count."""
        assert self._results is not None, "run() first"
        return self._results[slot]
