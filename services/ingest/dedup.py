"""Deduplication on (source, id) in Redis: short in-flight claims, then 'seen' for the TTL.

One key per event, `qy:{src:<source>}:seen:<id>`, holds either a claim token (PX, while
a request produces it) or "seen" (EX, once Kafka acknowledged it). The hash tag is the
source, not a group: the key is (source, id) and a batch mixes groups, so every key of
a batch stays in one Redis Cluster slot and each step is a single Lua call.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import redis

SEEN = "seen"

_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if not value then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 0
  elseif value == 'seen' then
    out[i] = 1
  elseif value == ARGV[1] then
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


def claim(client: redis.Redis, *, keys: Sequence[str], token: str, claim_ms: int) -> list[Claim]:
    """Claim every absent key for this token in one atomic step; say what each key held."""
    if not keys:
        return []
    found = client.register_script(_CLAIM)(keys=list(keys), args=[token, claim_ms])
    return [Claim(int(v)) for v in found]


def mark_seen(client: redis.Redis, *, keys: Sequence[str], ttl_seconds: int) -> None:
    """Mark acknowledged keys as seen for the dedup window."""
    if keys:
        client.register_script(_MARK_SEEN)(keys=list(keys), args=[ttl_seconds])


def release(client: redis.Redis, *, keys: Sequence[str], token: str) -> None:
    """Drop this token's claims so a retry (or a waiting request) can produce the events."""
    if keys:
        client.register_script(_RELEASE)(keys=list(keys), args=[token])
