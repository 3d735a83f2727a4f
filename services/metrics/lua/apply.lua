-- Apply one group's events to its Redis state, deduplicated, in one atomic call.
--
-- KEYS[1]  the group's `ids` key (any key of the group: it routes the call to its slot)
-- ARGV[1]  the group's key prefix, qy:{<group>}:
-- ARGV[2]  days of daily history kept
-- ARGV[3]  the events, JSON rows [kind (m, j or l), fingerprint, bucket hash, member, ms, day]
-- ARGV[4]  bits of one member record in the `mem` string (keys.RECORD_BITS)
-- ARGV[5]  fingerprints one dedup set may hold (apply.DEDUP_BUCKET_SIZE)
-- ARGV[6]  how far below every real time never-spoke members sort (keys.NEVER_SPOKE_OFFSET)
-- Returns {messages applied, joins applied, leaves applied, duplicates skipped}.
local prefix = ARGV[1]
local keep = tonumber(ARGV[2]) * 86400
local batch = cjson.decode(ARGV[3])
local now_ms = tonumber(redis.call('TIME')[1]) * 1000
local ids, names, mem = prefix .. 'ids', prefix .. 'names', prefix .. 'mem'
local recent, quiet = prefix .. 'recent', prefix .. 'quiet'
local REC = tonumber(ARGV[4])
local BUCKET = tonumber(ARGV[5])
local NEVER_SPOKE_OFFSET = tonumber(ARGV[6])
local expiry, levels, id_of, members, totals, minutes = {}, {}, {}, {}, {}, {}
local applied = {m = 0, j = 0, l = 0}
local dups = 0

-- Daily keys live `keep` seconds past the end of their day (+1 day for any UTC offset).
local function day_key(kind, day)
  local key = prefix .. kind .. ':' .. day
  expiry[key] = (day + 2) * 86400 + keep
  return key
end

local function dedup_key(day, level, hash)
  return prefix .. 'dd:' .. day .. ':' .. level .. ':' .. (hash % 2 ^ level)
end

-- Claim a fingerprint in the day's dedup sets; false when it was claimed before.
-- Level L of a day has 2^L sets; a fingerprint goes to its set of the day's newest
-- level, which grows when that set is full, and is looked up on every level.
local function claim(day, fp, hash)
  local level = levels[day]
  if level == nil then
    level = tonumber(redis.call('HGET', day_key('d', day), 'dl') or '0')
  end
  for l = 0, level - 1 do
    if redis.call('SISMEMBER', dedup_key(day, l, hash), fp) == 1 then
      levels[day] = level
      return false
    end
  end
  local key = dedup_key(day, level, hash)
  expiry[key] = (day + 2) * 86400 + keep
  levels[day] = level
  if redis.call('SCARD', key) < BUCKET then
    return redis.call('SADD', key, fp) == 1
  end
  if redis.call('SISMEMBER', key, fp) == 1 then
    return false
  end
  -- Growing before the set would pass BUCKET keeps every set an intset.
  levels[day] = level + 1
  redis.call('HSET', day_key('d', day), 'dl', level + 1)
  key = dedup_key(day, level + 1, hash)
  expiry[key] = (day + 2) * 86400 + keep
  redis.call('SADD', key, fp)
  return true
end

local function dense_id(member)
  local id = id_of[member]
  if id == nil then
    id = redis.call('HGET', ids, member)
    if not id then
      id = redis.call('INCR', prefix .. 'seq')
      redis.call('HSET', ids, member, id)
      redis.call('HSET', names, id, member)
    end
    id = tonumber(id)
    id_of[member] = id
  end
  return id
end

-- A member's record, read once per batch and written back at the end.
local function record(id)
  local r = members[id]
  if r == nil then
    local b = id * REC
    local v = redis.call('BITFIELD', mem, 'GET', 'i64', b, 'GET', 'i64', b + 64,
      'GET', 'i64', b + 128, 'GET', 'i64', b + 192, 'GET', 'u32', b + 256,
      'GET', 'u32', b + 288, 'GET', 'u32', b + 320)
    r = {v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
    members[id] = r
  end
  return r
end

local function add(day, field)
  local t = totals[day]
  if t == nil then
    t = {m = 0, u = 0, j = 0, l = 0}
    totals[day] = t
  end
  t[field] = t[field] + 1
end

for _, e in ipairs(batch) do
  local kind, fp, hash, member, ts, day = e[1], e[2], e[3], e[4], tonumber(e[5]), e[6]
  if not claim(day, fp, hash) then
    dups = dups + 1
  else
    applied[kind] = applied[kind] + 1
    local id = dense_id(member)
    local r = record(id)
    if kind == 'm' then
      add(day, 'm')
      r[5] = r[5] + 1
      if redis.call('SETBIT', day_key('a', day), id, 1) == 0 then
        add(day, 'u')
        r[6] = r[6] + 1
      end
      redis.call('BITFIELD', day_key('c', day), 'OVERFLOW', 'SAT', 'INCRBY', 'u16', '#' .. id, 1)
      r[4] = math.max(r[4], ts)
      local minute = math.floor(ts / 60000)
      local hour = math.floor(minute / 60)
      local per_hour = minutes[hour] or {}
      per_hour[minute % 60] = (per_hour[minute % 60] or 0) + 1
      minutes[hour] = per_hour
    elseif kind == 'j' then
      add(day, 'j')
      -- The first join defines the cohort, whatever order the joins arrive in.
      if r[1] == 0 or ts < r[1] then
        if r[1] ~= 0 then
          redis.call('SETBIT', day_key('co', r[7]), id, 0)
        end
        redis.call('SETBIT', day_key('co', day), id, 1)
        r[1], r[7] = ts, day
      end
      r[2] = math.max(r[2], ts)
    else
      add(day, 'l')
      r[3] = math.max(r[3], ts)
    end
  end
end

for day, t in pairs(totals) do
  local key = day_key('d', day)
  for field, n in pairs(t) do
    if n > 0 then redis.call('HINCRBY', key, field, n) end
  end
end
for hour, per_hour in pairs(minutes) do
  local key = prefix .. 'mh:' .. hour
  for minute, n in pairs(per_hour) do redis.call('HINCRBY', key, minute, n) end
  expiry[key] = (hour + 26) * 3600
end
-- Write each touched record back, and keep the current members in `quiet` ordered by
-- silence: never-spoke ones first (by join time, pushed below every real timestamp),
-- then by last message.
for id, r in pairs(members) do
  local b = id * REC
  local f = '%d'
  redis.call('BITFIELD', mem, 'SET', 'i64', b, string.format(f, r[1]),
    'SET', 'i64', b + 64, string.format(f, r[2]), 'SET', 'i64', b + 128, string.format(f, r[3]),
    'SET', 'i64', b + 192, string.format(f, r[4]), 'SET', 'u32', b + 256, r[5],
    'SET', 'u32', b + 288, r[6], 'SET', 'u32', b + 320, r[7])
  if r[4] > 0 then
    redis.call('ZADD', recent, 'GT', string.format(f, r[4]), id)
  end
  if r[3] == 0 or math.max(r[2], r[4]) > r[3] then
    local score = r[4]
    if score == 0 then score = r[1] - NEVER_SPOKE_OFFSET end
    redis.call('ZADD', quiet, string.format(f, score), id)
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
