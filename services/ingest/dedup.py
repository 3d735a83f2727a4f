"""Deduplication on (source, id) in Redis: short in-flight claims, then 'seen' for the TTL.

One key per event, `qy:{src:<source>}:seen:<id>`, holds either a claim token (PX, while
a request produces it) or "seen" (EX, once Kafka acknowledged it). The hash tag is the
source, not a group: the key is (source, id) and a batch mixes groups, so every key of
a batch stays in one Redis Cluster slot and each step is a single Lua call.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import IntEnum
from typing import Any

import redis.asyncio

SEEN = "seen"

# ARGV[1] is the claim's life in ms, ARGV[i + 1] the claiming request's token for KEYS[i]:
# one call serves every request waiting at that moment (group commit), keys in order.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[i + 1]
  local value = redis.call('GET', key)
  if not value then
    redis.call('SET', key, token, 'PX', ARGV[1])
    out[i] = 0
  elseif value == 'seen' then
    out[i] = 1
  elseif value == token then
    out[i] = 0
  else
    out[i] = 2
  end
end
return out
"""
_MARK_SEEN = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'seen', 'EX', ARGV[1])
end
return #KEYS
"""
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""


class Claim(IntEnum):
    """What a claim attempt found for one key."""

    MINE = 0  # new: this request produces it
    SEEN = 1  # acknowledged before: a duplicate
    BUSY = 2  # another request is producing it right now


def dedup_key(source_id: str, event_id: str) -> str:
    """Return the Redis key of (source, id)."""
    return f"qy:{{src:{source_id}}}:seen:{event_id}"


_Waiter = tuple[list[str], list[Any], "asyncio.Future[Any]"]


class _GroupCall:
    """One script for the keys of every request waiting at the moment (group commit).

    The first request calls at once; requests arriving while a call is in flight queue and
    go together in the next call, so under load one round trip serves many requests and
    at low load nothing waits. Each waiter gets its own slice of the result (or the error).
    """

    def __init__(self, run: Callable[[list[str], list[Any]], Awaitable[Any]]) -> None:
        self._run = run
        self._pending: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[str], per_key: list[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, per_key, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                keys = [key for waiter in batch for key in waiter[0]]
                per_key = [arg for waiter in batch for arg in waiter[1]]
                try:
                    result = await self._run(keys, per_key)
                except Exception as exc:  # noqa: BLE001 - every waiter gets it
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for waiter_keys, _, future in batch:
                    end = start + len(waiter_keys)
                    if not future.done():
                        future.set_result(result[start:end] if isinstance(result, list) else result)
                    start = end
        finally:
            self._task = None


class Dedup:
    """The three steps on an asyncio Redis client, each one EVALSHA of a script loaded once.

    Claims and marks of concurrent requests of one source share a call (their keys share the
    source's hash tag, so one Redis Cluster slot); releases, rare, go alone.
    """

    def __init__(self, client: redis.asyncio.Redis, *, claim_ms: int, ttl_seconds: int) -> None:
        self.client = client
        self._claim_script = client.register_script(_CLAIM)
        self._mark_script = client.register_script(_MARK_SEEN)
        self._release = client.register_script(_RELEASE)
        self._claim_ms = claim_ms
        self._ttl_seconds = ttl_seconds
        # A token only has to differ from every other request's: a random prefix per Dedup
        # (built in each process's lifespan, so never shared by forked workers) and a counter;
        # uuid4 per request cost more CPU than the rest of the claim.
        self._tokens = (f"{uuid.uuid4().hex}-{n}" for n in itertools.count())
        self._claims: dict[str, _GroupCall] = {}
        self._marks: dict[str, _GroupCall] = {}

    async def _claim_call(self, keys: list[str], tokens: list[Any]) -> Any:
        return await self._claim_script(keys=keys, args=[self._claim_ms, *tokens])

    async def _mark_call(self, keys: list[str], _: list[Any]) -> Any:
        return await self._mark_script(keys=keys, args=[self._ttl_seconds])

    def new_token(self) -> str:
        """Return a claim token no other request holds."""
        return next(self._tokens)

    async def claim(self, source_id: str, *, keys: Sequence[str], token: str) -> list[Claim]:
        """Claim every absent key for this token atomically; say what each key held."""
        if not keys:
            return []
        call = self._claims.get(source_id)
        if call is None:
            call = self._claims[source_id] = _GroupCall(self._claim_call)
        found = await call(list(keys), [token] * len(keys))
        return [Claim(int(v)) for v in found]

    async def mark_seen(self, source_id: str, *, keys: Sequence[str]) -> None:
        """Mark acknowledged keys as seen for the dedup window."""
        if keys:
            call = self._marks.get(source_id)
            if call is None:
                call = self._marks[source_id] = _GroupCall(self._mark_call)
            await call(list(keys), [])

    async def release(self, *, keys: Sequence[str], token: str) -> None:
        """Drop this token's claims so a retry (or a waiting request) can produce the events."""
        if keys:
            await self._release(keys=list(keys), args=[token])
