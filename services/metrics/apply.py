"""Apply events to a group's Redis state: dedup and update in one Lua call per group and batch.

A script call takes every event of one group in the batch. For each event it
claims the event's fingerprint in a per-day dedup hash and, only when the claim
is new, updates the counters; a replayed event therefore changes nothing. All
groups of a poll go to Redis in one pipeline.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from services.common.events import Event
from services.metrics.keys import NEVER_SPOKE_OFFSET, RECORD_BITS, GroupKeys, local_day, today

# A dedup bucket holds at most this many fingerprints, so it stays a compact intset
# (Redis' default set-max-intset-entries is 512).
DEDUP_BUCKET_SIZE = 512

APPLY_LUA = """
local prefix = ARGV[1]
local keep = tonumber(ARGV[2]) * 86400
local now_ms = tonumber(redis.call('TIME')[1]) * 1000
local ids, names, mem = prefix .. 'ids', prefix .. 'names', prefix .. 'mem'
local recent, quiet = prefix .. 'recent', prefix .. 'quiet'
local REC = RECORD_BITS
local BUCKET = DEDUP_BUCKET_SIZE
local expiry = {}
local levels = {}
local touched = {}
local applied = {m = 0, j = 0, l = 0}
local dups = 0

-- Daily keys live `keep` seconds past the end of their day (+1 day for any UTC offset).
local function day_key(kind, day)
  local key = prefix .. kind .. ':' .. day
  expiry[key] = (day + 2) * 86400 + keep
  return key
end

-- Claim a fingerprint in the day's dedup sets; false when it was claimed before.
-- Level L of a day has 2^L sets; a fingerprint goes to its set of the day's newest
-- level, which grows when that set is full, and is looked up on every level.
local function dedup_key(day, level, hash)
  return prefix .. 'dd:' .. day .. ':' .. level .. ':' .. (hash % 2 ^ level)
end

local function claim(day, fp, hash)
  local totals = day_key('d', day)
  local level = levels[day]
  if level == nil then
    level = tonumber(redis.call('HGET', totals, 'dl') or '0')
  end
  for l = 0, level do
    if redis.call('SISMEMBER', dedup_key(day, l, hash), fp) == 1 then
      levels[day] = level
      return false
    end
  end
  local key = dedup_key(day, level, hash)
  if redis.call('SCARD', key) >= BUCKET then
    level = level + 1
    redis.call('HSET', totals, 'dl', level)
    key = dedup_key(day, level, hash)
  end
  levels[day] = level
  redis.call('SADD', key, fp)
  expiry[key] = (day + 2) * 86400 + keep
  return true
end

for i = 3, #ARGV, 6 do
  local kind, fp, hash, member = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local ts_text, day = ARGV[i + 4], tonumber(ARGV[i + 5])
  local ts = tonumber(ts_text)
  if not claim(day, fp, hash) then
    dups = dups + 1
  else
    applied[kind] = applied[kind] + 1
    local id = redis.call('HGET', ids, member)
    if not id then
      id = redis.call('INCR', prefix .. 'seq')
      redis.call('HSET', ids, member, id)
      redis.call('HSET', names, id, member)
    end
    id = tonumber(id)
    touched[id] = true
    local base = id * REC
    local totals = day_key('d', day)
    if kind == 'm' then
      redis.call('HINCRBY', totals, 'm', 1)
      local first_today = redis.call('SETBIT', day_key('a', day), id, 1) == 0
      if first_today then
        redis.call('HINCRBY', totals, 'u', 1)
      end
      redis.call('BITFIELD', day_key('c', day), 'OVERFLOW', 'SAT', 'INCRBY', 'u16', '#' .. id, 1)
      local last = redis.call('BITFIELD', mem, 'GET', 'i64', base + 192)[1]
      local ops = {'BITFIELD', mem, 'OVERFLOW', 'SAT', 'INCRBY', 'u32', base + 256, 1}
      if first_today then
        table.insert(ops, 'INCRBY'); table.insert(ops, 'u32')
        table.insert(ops, base + 288); table.insert(ops, 1)
      end
      if ts > last then
        table.insert(ops, 'SET'); table.insert(ops, 'i64')
        table.insert(ops, base + 192); table.insert(ops, ts_text)
      end
      redis.call(unpack(ops))
      local minute = math.floor(ts / 60000)
      local hour = math.floor(minute / 60)
      local per_minute = prefix .. 'mh:' .. hour
      redis.call('HINCRBY', per_minute, minute % 60, 1)
      expiry[per_minute] = (hour + 26) * 3600
      redis.call('ZADD', recent, 'GT', ts_text, id)
    elseif kind == 'j' then
      redis.call('HINCRBY', totals, 'j', 1)
      local r = redis.call('BITFIELD', mem, 'GET', 'i64', base, 'GET', 'i64', base + 64,
        'GET', 'u32', base + 320)
      local ops = {'BITFIELD', mem}
      -- The first join defines the cohort, whatever order the joins arrive in.
      if r[1] == 0 or ts < r[1] then
        if r[1] ~= 0 then
          redis.call('SETBIT', day_key('co', r[3]), id, 0)
        end
        redis.call('SETBIT', day_key('co', day), id, 1)
        for _, v in ipairs({'SET', 'i64', base, ts_text, 'SET', 'u32', base + 320, day}) do
          table.insert(ops, v)
        end
      end
      if ts > r[2] then
        for _, v in ipairs({'SET', 'i64', base + 64, ts_text}) do table.insert(ops, v) end
      end
      if #ops > 2 then redis.call(unpack(ops)) end
    else
      redis.call('HINCRBY', totals, 'l', 1)
      local left = redis.call('BITFIELD', mem, 'GET', 'i64', base + 128)[1]
      if ts > left then
        redis.call('BITFIELD', mem, 'SET', 'i64', base + 128, ts_text)
      end
    end
  end
end

-- Keep the current members in `quiet` ordered by silence: never-spoke ones first
-- (by join time, pushed below every real timestamp), then by last message.
for id in pairs(touched) do
  local r = redis.call('BITFIELD', mem, 'GET', 'i64', id * REC, 'GET', 'i64', id * REC + 64,
    'GET', 'i64', id * REC + 128, 'GET', 'i64', id * REC + 192)
  local first_join, last_join, last_leave, last_active = r[1], r[2], r[3], r[4]
  if last_leave == 0 or math.max(last_join, last_active) > last_leave then
    local score = last_active
    if score == 0 then score = first_join - NEVER_SPOKE_OFFSET end
    redis.call('ZADD', quiet, score, id)
  else
    redis.call('ZREM', quiet, id)
  end
end

for key, at in pairs(expiry) do
  redis.call('EXPIREAT', key, at)
end
if applied.m + applied.j + applied.l > 0 then
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', now_ms - 90000000)
  -- A group silent for the whole history loses its member table too.
  for _, key in ipairs({ids, names, mem, recent, quiet, prefix .. 'seq'}) do
    redis.call('EXPIRE', key, keep + 172800)
  end
end
return {applied.m, applied.j, applied.l, dups}
"""
for _name, _value in {
    "RECORD_BITS": RECORD_BITS,
    "DEDUP_BUCKET_SIZE": DEDUP_BUCKET_SIZE,
    "NEVER_SPOKE_OFFSET": NEVER_SPOKE_OFFSET,
}.items():
    APPLY_LUA = APPLY_LUA.replace(_name, str(_value))

_KIND = {"message.created": "m", "member.joined": "j", "member.left": "l"}


@dataclass
class ApplyResult:
    """What a batch did: events applied per type, duplicates and too-old events skipped."""

    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: int = 0
    too_old: int = 0

    def add(self, other: ApplyResult) -> None:
        """Fold another result into this one."""
        for kind, n in other.applied.items():
            self.applied[kind] += n
        self.duplicates += other.duplicates
        self.too_old += other.too_old


def fingerprint(source: str, event_id: str) -> tuple[str, str]:
    """Return the 64-bit fingerprint of (source, id) as a decimal, and its 16-bit bucket hash."""
    digest = hashlib.blake2b(
        f"{source}\x1f{event_id}".encode("utf-8", "surrogatepass"), digest_size=10
    ).digest()
    return str(int.from_bytes(digest[:8], "big", signed=True)), str(
        int.from_bytes(digest[8:], "big")
    )


def script_args(
    *, kind: str, source: str, event_id: str, member_id: str, ts_ms: int, day: int
) -> list[bytes | str]:
    """Return the six script arguments of one event (kind is m, j or l)."""
    digest, bucket_hash = fingerprint(source, event_id)
    return [kind, digest, bucket_hash, member_id, str(ts_ms), str(day)]


class Applier:
    """Apply batches of events for one deployment's timezone and history."""

    def __init__(self, client: redis.Redis, *, tz: ZoneInfo, history_days: int) -> None:
        self.client = client
        self.tz = tz
        self.history_days = history_days
        self.script = client.register_script(APPLY_LUA)

    def queue(self, pipe: redis.client.Pipeline, group_id: str, args: list[bytes | str]) -> None:
        """Queue one script call of a group's prepared event arguments on a pipeline."""
        prefix = GroupKeys(group_id).prefix
        self.script(keys=[prefix + "ids"], args=[prefix, self.history_days, *args], client=pipe)

    def prepare(
        self, events: Iterable[Event], *, now: datetime | None = None
    ) -> tuple[dict[str, list[bytes | str]], ApplyResult]:
        """Turn events into per-group script arguments, dropping ones older than the history."""
        oldest = today(self.tz, now) - self.history_days + 1
        per_group: dict[str, list[bytes | str]] = defaultdict(list)
        result = ApplyResult()
        for event in events:
            kind = _KIND.get(event.type)
            if kind is None:
                result.applied[event.type] += 1  # member.updated changes no metric
                continue
            day = local_day(event.occurred_at, self.tz)
            if day < oldest:
                result.too_old += 1
                continue
            per_group[event.group_id] += script_args(
                kind=kind,
                source=event.source,
                event_id=event.id,
                member_id=event.member_id,
                ts_ms=int(event.occurred_at.timestamp() * 1000),
                day=day,
            )
        return per_group, result

    def apply(self, events: Sequence[Event], *, now: datetime | None = None) -> ApplyResult:
        """Apply a batch: every group's events in one script call, all calls in one pipeline."""
        per_group, result = self.prepare(events, now=now)
        if not per_group:
            return result
        pipe = self.client.pipeline(transaction=False)
        for group_id, args in per_group.items():
            self.queue(pipe, group_id, args)
        for messages, joins, leaves, dups in pipe.execute():
            result.applied["message.created"] += messages
            result.applied["member.joined"] += joins
            result.applied["member.left"] += leaves
            result.duplicates += dups
        return result
