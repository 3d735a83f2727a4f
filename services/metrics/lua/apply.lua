-- Apply one group's events and moderation actions to its Redis state, in one atomic call.
--
-- KEYS[1]  the group's `ids` key (any key of the group: it routes the call to its slot)
-- ARGV[1]  the group's key prefix, qy:{<group>}:
-- ARGV[2]  days of daily history kept
-- ARGV[3]  the events, JSON rows [kind (m, j or l), fingerprint, bucket hash, member, ms, day,
--          then for m the message id, for j the channel and the inviter ("" for none)]
-- ARGV[4]  bits of one member record in the `mem` string (keys.RECORD_BITS)
-- ARGV[5]  fingerprints one dedup set may hold (apply.DEDUP_BUCKET_SIZE)
-- ARGV[6]  how far below every real time never-spoke members sort (keys.NEVER_SPOKE_OFFSET)
-- ARGV[7]  today's day number (local)
-- ARGV[8]  days a message stays findable by its id for a later deletion (keys.MESSAGE_INDEX_DAYS)
-- ARGV[9]  latest display names, JSON rows [member, ms, name]
-- ARGV[10] moderation actions, JSON rows [d, member, message id] | [b, member] | [u, member]
-- ARGV[11] bits of one acquisition record in the `jn` string (keys.JOIN_BITS)
-- Returns {messages applied, joins applied, leaves applied, duplicates skipped,
--          deleted messages not counted, deletions subtracted}.
local prefix = ARGV[1]
local history = tonumber(ARGV[2])
local keep = history * 86400
local batch = cjson.decode(ARGV[3])
local now_ms = tonumber(redis.call('TIME')[1]) * 1000
local ids, names, mem = prefix .. 'ids', prefix .. 'names', prefix .. 'mem'
local recent, quiet, jn = prefix .. 'recent', prefix .. 'quiet', prefix .. 'jn'
local del, out, chans, dn = prefix .. 'del', prefix .. 'out', prefix .. 'ch', prefix .. 'dn'
local REC = tonumber(ARGV[4])
local BUCKET = tonumber(ARGV[5])
local NEVER_SPOKE_OFFSET = tonumber(ARGV[6])
local TODAY = tonumber(ARGV[7])
local INDEX_DAYS = tonumber(ARGV[8])
local display = cjson.decode(ARGV[9])
local actions = cjson.decode(ARGV[10])
local JREC = tonumber(ARGV[11])
local expiry, levels, id_of, members, before, joins, totals, minutes = {}, {}, {}, {}, {}, {}, {}, {}
local acq = {}
local applied = {m = 0, j = 0, l = 0}
local dups, unseen, subtracted = 0, 0, 0
local has_del = redis.call('EXISTS', del) == 1
-- Numbers go to redis.call as strings formatted with %d: Lua 5.1 turns a number into a
-- string with a %.14g, whose floating-point formatting was the largest single cost of
-- the script (about a sixth of Redis' instructions per event, measured with callgrind).
local fmt = string.format
local cards = {}  -- sizes of the dedup sets read in this call, kept up to date
local id_text = {}  -- dense id -> its decimal string

-- Daily keys live `keep` seconds past the end of their day (+1 day for any UTC offset).
local day_keys = {}
local function day_key(kind, day)
  local of_kind = day_keys[kind]
  if of_kind == nil then
    of_kind = {}
    day_keys[kind] = of_kind
  end
  local key = of_kind[day]
  if key == nil then
    key = fmt('%s%s:%d', prefix, kind, day)
    of_kind[day] = key
    expiry[key] = (day + 2) * 86400 + keep
  end
  return key
end

local function dedup_key(day, level, hash)
  return fmt('%sdd:%d:%d:%d', prefix, day, level, hash % 2 ^ level)
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
  local size = cards[key] or redis.call('SCARD', key)
  if size < BUCKET then
    local added = redis.call('SADD', key, fp)
    cards[key] = size + added
    return added == 1
  end
  cards[key] = size
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
    id_text[id] = fmt('%d', id)
  end
  return id
end

-- A member's record, read once per batch and written back at the end (with its value
-- before the batch, to move the member between acquisition counts).
local function record(id)
  local r = members[id]
  if r == nil then
    local b = id * REC
    local v = redis.call('BITFIELD', mem, 'GET', 'i64', fmt('%d', b), 'GET', 'i64',
      fmt('%d', b + 64), 'GET', 'i64', fmt('%d', b + 128), 'GET', 'i64', fmt('%d', b + 192),
      'GET', 'u32', fmt('%d', b + 256), 'GET', 'u32', fmt('%d', b + 288), 'GET', 'u32',
      fmt('%d', b + 320), 'GET', 'u32', fmt('%d', b + 352))
    r = {v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]}
    members[id] = r
    before[id] = {v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]}
  end
  return r
end

-- A member's acquisition record: channel id, inviter's dense id, first active day (no join),
-- 1 when the member's contribution is in the acquisition counts.
local function joined(id)
  local j = joins[id]
  if j == nil then
    local b = id * JREC
    local v = redis.call('BITFIELD', jn, 'GET', 'u32', fmt('%d', b), 'GET', 'u32',
      fmt('%d', b + 32), 'GET', 'u32', fmt('%d', b + 64), 'GET', 'u32', fmt('%d', b + 96))
    j = {v[1], v[2], v[3], v[4], orig = {v[1], v[2], v[3], v[4]}}
    joins[id] = j
  end
  return j
end

local function add(day, field, n)
  local t = totals[day]
  if t == nil then
    t = {m = 0, u = 0, j = 0, l = 0}
    totals[day] = t
  end
  t[field] = t[field] + (n or 1)
end

local function channel_id(name)
  if name == '' then return 0 end
  local id = redis.call('HGET', chans, 'n:' .. name)
  if not id then
    id = redis.call('HINCRBY', chans, '#', 1)
    redis.call('HSET', chans, 'n:' .. name, id, 'i:' .. id, name)
  end
  return tonumber(id)
end

local function count_message(id, r, day, ts, message_id)
  add(day, 'm')
  r[5] = r[5] + 1
  local sid = id_text[id]
  if redis.call('SETBIT', day_key('a', day), sid, '1') == 0 then
    add(day, 'u')
    r[6] = r[6] + 1
  end
  redis.call('BITFIELD', day_key('c', day), 'OVERFLOW', 'SAT', 'INCRBY', 'u16', '#' .. sid, '1')
  r[8] = math.max(r[8], day)
  local minute = math.floor(ts / 60000)
  local hour = math.floor(minute / 60)
  local per_hour = minutes[hour] or {}
  per_hour[minute % 60] = (per_hour[minute % 60] or 0) + 1
  minutes[hour] = per_hour
  if day >= TODAY - INDEX_DAYS and message_id ~= '' then
    local key = fmt('%smi:%d', prefix, day)
    redis.call('HSET', key, message_id, fmt('%d,%d', id, ts))
    expiry[key] = (day + 2 + INDEX_DAYS) * 86400
  end
  -- Members never seen joining are `new` on their first active day.
  if r[1] == 0 then
    local j = joined(id)
    if j[3] == 0 or day < j[3] then
      if j[3] ~= 0 then redis.call('SETBIT', day_key('fs', j[3]), sid, '0') end
      redis.call('SETBIT', day_key('fs', day), sid, '1')
      j[3] = day
    end
  end
end

local function apply_join(id, r, day, ts, channel, inviter)
  add(day, 'j')
  -- The first join defines the cohort, channel and inviter, whatever order joins arrive in.
  if r[1] == 0 or ts < r[1] then
    if r[1] ~= 0 then
      redis.call('SETBIT', day_key('co', r[7]), id, 0)
    end
    redis.call('SETBIT', day_key('co', day), id, 1)
    r[1], r[7] = ts, day
    local j = joined(id)
    if j[3] ~= 0 then
      redis.call('SETBIT', day_key('fs', j[3]), id, 0)
      j[3] = 0
    end
    j[1] = channel_id(channel)
    j[2] = inviter ~= '' and dense_id(inviter) or 0
  end
  r[2] = math.max(r[2], ts)
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
      r[4] = math.max(r[4], ts)
      if has_del and redis.call('SISMEMBER', del, e[7]) == 1 then
        unseen = unseen + 1  -- moderation deleted it before it arrived
      else
        count_message(id, r, day, ts, e[7])
      end
    elseif kind == 'j' then
      apply_join(id, r, day, ts, e[7], e[8])
    else
      add(day, 'l')
      r[3] = math.max(r[3], ts)
    end
  end
end

-- The latest active day before `day` (0 when none is kept).
local function active_before(id, day)
  for d = day - 1, TODAY - history, -1 do
    if redis.call('GETBIT', prefix .. 'a:' .. d, id) == 1 then return d end
  end
  return 0
end

-- Take a counted message out again: messages, the member's day (only when none of their
-- other messages that day remains), their totals and the minute.
local function subtract(value, day)
  local sep = string.find(value, ',', 1, true)
  local id, ts = tonumber(string.sub(value, 1, sep - 1)), tonumber(string.sub(value, sep + 1))
  local r = record(id)
  add(day, 'm', -1)
  r[5] = math.max(r[5] - 1, 0)
  local left = redis.call('BITFIELD', day_key('c', day), 'OVERFLOW', 'SAT', 'INCRBY', 'u16',
    '#' .. id, -1)[1]
  if left == 0 and redis.call('SETBIT', day_key('a', day), id, 0) == 1 then
    add(day, 'u', -1)
    r[6] = math.max(r[6] - 1, 0)
    if r[8] == day then r[8] = active_before(id, day) end
  end
  local minute = math.floor(ts / 60000)
  local hour = math.floor(minute / 60)
  local per_hour = minutes[hour] or {}
  per_hour[minute % 60] = (per_hour[minute % 60] or 0) - 1
  minutes[hour] = per_hour
end

for _, a in ipairs(actions) do
  if a[1] == 'd' then
    if redis.call('SADD', del, a[3]) == 1 then
      has_del = true
      for day = TODAY + 1, TODAY - INDEX_DAYS - 1, -1 do
        local key = prefix .. 'mi:' .. day
        local v = redis.call('HGET', key, a[3])
        if v then
          redis.call('HDEL', key, a[3])
          subtract(v, day)
          subtracted = subtracted + 1
          break
        end
      end
    end
  elseif a[1] == 'b' then
    redis.call('SADD', out, dense_id(a[2]))
  else
    redis.call('SREM', out, dense_id(a[2]))
  end
end

for _, n in ipairs(display) do
  local id = dense_id(n[1])
  local cur = redis.call('HGET', dn, id)
  local value = n[2] .. '|' .. n[3]
  local sep = cur and string.find(cur, '|', 1, true)
  local cur_ms = sep and tonumber(string.sub(cur, 1, sep - 1)) or -1
  if not cur or tonumber(n[2]) > cur_ms
      or (tonumber(n[2]) == cur_ms and value > cur) then
    redis.call('HSET', dn, id, value)
  end
end

for day, t in pairs(totals) do
  local key = day_key('d', day)
  for field, n in pairs(t) do
    if n ~= 0 then redis.call('HINCRBY', key, field, fmt('%d', n)) end
  end
end
for hour, per_hour in pairs(minutes) do
  local key = fmt('%smh:%d', prefix, hour)
  for minute, n in pairs(per_hour) do
    if n ~= 0 then redis.call('HINCRBY', key, fmt('%d', minute), fmt('%d', n)) end
  end
  expiry[key] = (hour + 26) * 3600
end

-- Acquisition counts per first-join day: channel `c<id>`/`C<id>` and inviter `i<id>`/`I<id>`
-- fields, packed lanes joins + still_members·2^17 + spoke·2^34 and d7 + d30·2^26.
local function acq_flags(r)
  if r[1] == 0 then return nil end
  local present = r[3] == 0 or math.max(r[2], r[4]) > r[3]
  local spoke = r[8] ~= 0 and r[8] >= r[7]
  local low = 1 + (present and 131072 or 0) + (spoke and 17179869184 or 0)
  local high = ((spoke and r[8] >= r[7] + 7) and 1 or 0)
    + ((spoke and r[8] >= r[7] + 30) and 67108864 or 0)
  return {r[7], low, high}
end

local function same(a, b)
  if a == nil or b == nil then return a == b end
  return a[1] == b[1] and a[2] == b[2] and a[3] == b[3]
end

local function acq_delta(flags, ch, inv, sign)
  if flags == nil then return end
  local rows = {{'ac', 'c' .. ch, 'C' .. ch}}
  if inv ~= 0 then rows[2] = {'ai', 'i' .. inv, 'I' .. inv} end
  for _, row in ipairs(rows) do
    local key = day_key(row[1], flags[1])
    local fields = acq[key] or {}
    fields[row[2]] = (fields[row[2]] or 0) + sign * flags[2]
    fields[row[3]] = (fields[row[3]] or 0) + sign * flags[3]
    acq[key] = fields
  end
end

-- Write each touched record back, and keep the current members in `quiet` ordered by
-- silence: never-spoke ones first (by join time, pushed below every real timestamp),
-- then by last message.
for id, r in pairs(members) do
  local was, now, j = acq_flags(before[id]), acq_flags(r), joins[id]
  if not same(was, now) or (j and (j[1] ~= j.orig[1] or j[2] ~= j.orig[2])) then
    j = joined(id)
    -- Members recorded before the counts existed were never added: nothing to take back.
    if j.orig[4] == 1 then acq_delta(was, j.orig[1], j.orig[2], -1) end
    acq_delta(now, j[1], j[2], 1)
    j[4] = now and 1 or 0
  end
  local b = id * REC
  local f = '%d'
  local sid = fmt(f, id)
  redis.call('BITFIELD', mem, 'SET', 'i64', fmt(f, b), fmt(f, r[1]),
    'SET', 'i64', fmt(f, b + 64), fmt(f, r[2]), 'SET', 'i64', fmt(f, b + 128), fmt(f, r[3]),
    'SET', 'i64', fmt(f, b + 192), fmt(f, r[4]), 'SET', 'u32', fmt(f, b + 256), fmt(f, r[5]),
    'SET', 'u32', fmt(f, b + 288), fmt(f, r[6]), 'SET', 'u32', fmt(f, b + 320), fmt(f, r[7]),
    'SET', 'u32', fmt(f, b + 352), fmt(f, r[8]))
  if r[4] > 0 then
    redis.call('ZADD', recent, 'GT', fmt(f, r[4]), sid)
  end
  if r[3] == 0 or math.max(r[2], r[4]) > r[3] then
    local score = r[4]
    if score == 0 then score = r[1] - NEVER_SPOKE_OFFSET end
    redis.call('ZADD', quiet, fmt(f, score), sid)
  else
    redis.call('ZREM', quiet, sid)
  end
end
for id, j in pairs(joins) do
  if j[1] ~= j.orig[1] or j[2] ~= j.orig[2] or j[3] ~= j.orig[3] or j[4] ~= j.orig[4] then
    local b, f = id * JREC, '%d'
    redis.call('BITFIELD', jn, 'SET', 'u32', fmt(f, b), fmt(f, j[1]), 'SET', 'u32',
      fmt(f, b + 32), fmt(f, j[2]), 'SET', 'u32', fmt(f, b + 64), fmt(f, j[3]), 'SET', 'u32',
      fmt(f, b + 96), fmt(f, j[4]))
  end
end
for key, fields in pairs(acq) do
  for field, n in pairs(fields) do
    if n ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', n)) end
  end
end

for key, at in pairs(expiry) do
  redis.call('EXPIREAT', key, fmt('%d', at))
end
if applied.m + applied.j + applied.l + #display + #actions > 0 then
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', fmt('%d', now_ms - 90000000))
  -- A group silent for the whole history loses its member tables too.
  for _, key in ipairs({ids, names, mem, recent, quiet, jn, chans, dn, del, out,
                        prefix .. 'seq'}) do
    redis.call('EXPIRE', key, fmt('%d', keep + 172800))
  end
end
return {applied.m, applied.j, applied.l, dups, unseen, subtracted}
