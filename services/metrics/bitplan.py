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

import redis

from services.metrics.keys import GroupKeys

SCRATCH_TTL_SECONDS = 60
OPS_PER_CALL = 2000

RUN_LUA = """
local out = {}
local i = 1
while i <= #ARGV do
  local op, n = ARGV[i], tonumber(ARGV[i + 1])
  local args = {}
  for j = 1, n do args[j] = ARGV[i + 1 + j] end
  if op == 'C' then
    out[#out + 1] = redis.call('BITCOUNT', args[1])
  elseif op == 'OR' or op == 'AND' then
    redis.call('BITOP', op, unpack(args))
  elseif op == 'E' then
    redis.call('EXPIRE', args[1], args[2])
  elseif op == 'D' then
    redis.call('DEL', unpack(args))
  end
  i = i + 2 + n
end
return out
"""


class BitPlan:
    """Queue bitmap operations on a group's keys, then run them in one round trip."""

    def __init__(self, client: redis.Redis, keys: GroupKeys) -> None:
        self._client = client
        self._keys = keys
        self._script = client.register_script(RUN_LUA)
        self._tag = uuid.uuid4().hex
        self._ops: list[list[str]] = []
        self._scratch: list[str] = []
        self._counts = 0
        self._and_key: str | None = None
        self._results: list[int] | None = None

    def _op(self, op: str, *args: str | int) -> None:
        self._ops.append([op, str(len(args)), *map(str, args)])

    def _new_scratch(self) -> str:
        key = self._keys.temp(f"{self._tag}:{len(self._scratch)}")
        self._scratch.append(key)
        return key

    def _into(self, dest: str, op: str, sources: Sequence[str]) -> str:
        self._op(op, dest, *sources)
        self._op("E", dest, SCRATCH_TTL_SECONDS)
        return dest

    def union(self, sources: Sequence[str]) -> str:
        """Return a key holding the OR of the sources (the source itself when alone)."""
        if len(sources) == 1:
            return sources[0]
        return self._into(self._new_scratch(), "OR", sources)

    def scratch_union(self, sources: Sequence[str]) -> str:
        """Return a new scratch key holding the OR of the sources, for accumulate()."""
        return self._into(self._new_scratch(), "OR", sources)

    def accumulate(self, dest: str, sources: Sequence[str]) -> None:
        """OR the sources into a scratch key in place."""
        self._op("OR", dest, dest, *sources)

    def count(self, key: str) -> int:
        """Queue the population count of a key; return its slot for result()."""
        self._op("C", key)
        self._counts += 1
        return self._counts - 1

    def count_and(self, *sources: str) -> int:
        """Queue the population count of the AND of the sources; return its slot."""
        if len(sources) == 1:
            return self.count(sources[0])
        if self._and_key is None:
            self._and_key = self._into(self._new_scratch(), "AND", sources)
        else:
            self._op("AND", self._and_key, *sources)
        return self.count(self._and_key)

    def run(self) -> None:
        """Send everything in chunks of one pipeline, then delete the scratch keys."""
        if self._scratch:
            self._op("D", *self._scratch)
        pipe = self._client.pipeline(transaction=False)
        route = [self._keys.ids]  # any key of the group: the call goes to the group's slot
        for start in range(0, len(self._ops), OPS_PER_CALL):
            args = [part for op in self._ops[start : start + OPS_PER_CALL] for part in op]
            self._script(keys=route, args=args, client=pipe)
        self._results = [int(n) for chunk in pipe.execute() for n in chunk]

    def result(self, slot: int) -> int:
        """Return the integer answer of a queued count."""
        assert self._results is not None, "run() first"
        return self._results[slot]
