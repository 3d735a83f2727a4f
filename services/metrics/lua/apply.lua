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
--
-- Batch-first: a redis.call costs about as much as the Lua work of an event, so the
-- script asks and writes per key, not per event. The fingerprints of a day are looked up
-- with one SMISMEMBER per dedup set and added with one SADD per set (the claims are
-- simulated in batch order, so what counts as new and when a day's sets grow is what one
-- SADD per event gave); the members' dense ids come from one HMGET; records are read and
-- written as packed bytes (GETRANGE/SETRANGE with struct, the layout BITFIELD used);
-- active bits, per-day message counters, cohort/first-seen bits and the message index
-- are gathered per key and written with one BITFIELD/HSET each before the actions and
-- the expiries; `recent` and `quiet` get one ZADD (and one ZREM).
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
local expiry, id_of, members, before, joins, totals, minutes = {}, {}, {}, {}, {}, {}, {}
local acq = {}
local applied = {m = 0, j = 0, l = 0}
local dups, unseen, subtracted = 0, 0, 0
local has_del = redis.call('EXISTS', del) == 1
-- Numbers go to redis.call as strings formatted with %d: Lua 5.1 turns a number into a
-- string with a %.14g, whose floating-point formatting was the largest single cost of
-- the script (about a sixth of Redis' instructions per event, measured with callgrind).
local fmt = string.format
local call, pack, unpack_bytes = redis.call, struct.pack, struct.unpack
local REC_FORMAT, JREC_FORMAT = '>i8i8i8i8I4I4I4I4', '>I4I4I4I4'
local CHUNK = 4000  -- arguments per command (Lua's C stack holds 8000); a multiple of 4
local cards = {}  -- sizes of the dedup sets read in this call, kept up to date
local id_text = {}  -- dense id -> its decimal string

-- cmd key head... args..., in calls of at most CHUNK args; the replies joined in order.
-- `head` holds at most two words (OVERFLOW SAT, GT).
local function chunked(cmd, key, head, args)
  local out = {}
  for s = 1, #args, CHUNK do
    local e = math.min(s + CHUNK - 1, #args)
    local reply
    if #head == 0 then
      reply = call(cmd, key, unpack(args, s, e))
    elseif #head == 1 then
      reply = call(cmd, key, head[1], unpack(args, s, e))
    else
      reply = call(cmd, key, head[1], head[2], unpack(args, s, e))
    end
    if type(reply) == 'table' then
      if s == 1 and e == #args then return reply end
      for _, v in ipairs(reply) do out[#out + 1] = v end
    end
  end
  return out
end

-- Writes gathered per key (in the order first touched) and made once, before the actions.
local bit_sets, bit_order = {}, {}  -- key -> {offset -> 0|1, order = {offsets}}
local function set_bit(key, offset, value)
  local bits = bit_sets[key]
  if bits == nil then
    bits = {order = {}}
    bit_sets[key] = bits
    bit_order[#bit_order + 1] = key
  end
  if bits[offset] == nil then bits.order[#bits.order + 1] = offset end
  bits[offset] = value
end
local function flush_bits()
  for _, key in ipairs(bit_order) do
    local bits, args = bit_sets[key], {}
    for _, offset in ipairs(bits.order) do
      local n = #args
      args[n + 1], args[n + 2], args[n + 3], args[n + 4] = 'SET', 'u1', offset, bits[offset]
    end
    chunked('BITFIELD', key, {}, args)
  end
  bit_sets, bit_order = {}, {}
end

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

-- Names built once per call: dedup sets by (day, level, bucket); a bucket is below 2^16.
local dedup_names = {}
local function dedup_key(day, level, hash)
  local bucket = hash % 2 ^ level
  local of_day = dedup_names[day]
  if of_day == nil then
    of_day = {}
    dedup_names[day] = of_day
  end
  local key = of_day[level * 65536 + bucket]
  if key == nil then
    key = fmt('%sdd:%d:%d:%d', prefix, day, level, bucket)
    of_day[level * 65536 + bucket] = key
  end
  return key
end

-- Dense ids: the batch's members are read with one HMGET (`unknown` marks those it did
-- not find); new ids are counted here and written with one INCRBY and two HSETs at the end.
local unknown, last_id, new_ids = {}, nil, {}
local function dense_id(member)
  local id = id_of[member]
  if id == nil then
    if not unknown[member] then
      id = call('HGET', ids, member)
    end
    if not id then
      if last_id == nil then last_id = tonumber(call('GET', prefix .. 'seq') or '0') end
      last_id = last_id + 1
      id = last_id
      new_ids[#new_ids + 1] = member
      unknown[member] = nil
    end
    id = tonumber(id)
    id_of[member] = id
    id_text[id] = fmt('%d', id)
  end
  return id
end
local function known_ids(members_list)
  local found = chunked('HMGET', ids, {}, members_list)
  for i, member in ipairs(members_list) do
    local id = found[i]
    if id then
      id = tonumber(id)
      id_of[member] = id
      id_text[id] = fmt('%d', id)
    else
      unknown[member] = true
    end
  end
end
local function write_new_ids()
  if #new_ids == 0 then return end
  local first = last_id - #new_ids
  call('INCRBY', prefix .. 'seq', fmt('%d', #new_ids))
  local by_member, by_id = {}, {}
  for i, member in ipairs(new_ids) do
    local text = fmt('%d', first + i)
    by_member[#by_member + 1], by_member[#by_member + 2] = member, text
    by_id[#by_id + 1], by_id[#by_id + 2] = text, member
  end
  chunked('HSET', ids, {}, by_member)
  chunked('HSET', names, {}, by_id)
  new_ids = {}
end

-- A member's record, read once per batch and written back at the end (with its value
-- before the batch, to move the member between acquisition counts).
local REC_BYTES, JREC_BYTES = REC / 8, JREC / 8
-- Bytes of a record at byte offset `at` of a string key, zeros past the string's end.
local function read_bytes(key, at, size)
  local v = call('GETRANGE', key, fmt('%d', at), fmt('%d', at + size - 1))
  if #v < size then v = v .. string.rep('\0', size - #v) end
  return v
end

-- Records of the batch's known members are read in spans: sorted ids whose records lie
-- at most SPAN_GAP bytes apart share one GETRANGE (zeros past the string's end), and are
-- written back by one SETRANGE of the span, patched, from the first record written to the
-- last (the bytes between them are those read: nothing else writes these strings until
-- then). A group small enough for its touched members to be dense gets one read and one
-- write per string; in a large one records stay read and written one by one.
local SPAN_GAP = 2048
local function read_spans(key, size, ids)
  local at, i = {}, 1
  while i <= #ids do
    local j = i
    while j < #ids and (ids[j + 1] - ids[j] - 1) * size <= SPAN_GAP do j = j + 1 end
    local first = ids[i] * size
    local span = {first = first, data = read_bytes(key, first, (ids[j] - ids[i] + 1) * size)}
    for k = i, j do at[ids[k]] = span end
    i = j + 1
  end
  return at
end
local mem_spans, jn_spans = {}, {}

-- Write records (id -> packed bytes) to a string key: ids in one read span by one SETRANGE
-- of the span's bytes patched, consecutive ids outside spans (new members) by one SETRANGE.
local function write_records(key, size, spans, recs)
  local ids = {}
  for id in pairs(recs) do ids[#ids + 1] = id end
  table.sort(ids)
  local i = 1
  while i <= #ids do
    local span, j, pieces = spans[ids[i]], i, {}
    if span then
      while j < #ids and spans[ids[j + 1]] == span do j = j + 1 end
      local pos = ids[i] * size - span.first + 1
      for k = i, j do
        local off = ids[k] * size - span.first + 1
        if off > pos then pieces[#pieces + 1] = string.sub(span.data, pos, off - 1) end
        pieces[#pieces + 1] = recs[ids[k]]
        pos = off + size
      end
    else
      while j < #ids and ids[j + 1] == ids[j] + 1 and not spans[ids[j + 1]] do j = j + 1 end
      for k = i, j do pieces[#pieces + 1] = recs[ids[k]] end
    end
    call('SETRANGE', key, fmt('%d', ids[i] * size), table.concat(pieces))
    i = j + 1
  end
end

-- The record's 8 numbers at byte `at` of a string key, from its span when it has one.
local function unpack_record(format, key, spans, id, size)
  local span = spans[id]
  if span then return unpack_bytes(format, span.data, id * size - span.first + 1) end
  return unpack_bytes(format, read_bytes(key, id * size, size))
end

local function record(id)
  local r = members[id]
  if r == nil then
    local a, b, c, d, e, f, g, h = unpack_record(REC_FORMAT, mem, mem_spans, id, REC_BYTES)
    r = {a, b, c, d, e, f, g, h}
    members[id] = r
    -- Only a joined member has acquisition counts to move (acq_flags of the rest is nil).
    if a ~= 0 then before[id] = {a, b, c, d, e, f, g, h} end
  end
  return r
end

-- A member's acquisition record: channel id, inviter's dense id, first active day (no join),
-- 1 when the member's contribution is in the acquisition counts.
local function joined(id)
  local j = joins[id]
  if j == nil then
    local a, b, c, d = unpack_record(JREC_FORMAT, jn, jn_spans, id, JREC_BYTES)
    j = {a, b, c, d, orig = {a, b, c, d}}
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

-- A day's active bits and per-member message counters, written by flush_messages.
local active, counts, index = {}, {}, {}  -- day -> {ids in order, id -> n}, day -> pairs
local index_keys = {}  -- day -> its `mi:` key name
local function count_message(id, r, day, ts, ts_text, message_id)
  add(day, 'm')
  r[5] = r[5] + 1
  local sid = id_text[id]
  day_key('a', day)
  day_key('c', day)
  local per_day = counts[day]
  if per_day == nil then
    per_day = {order = {}}
    counts[day] = per_day
  end
  if per_day[id] == nil then
    per_day.order[#per_day.order + 1] = id
    per_day[id] = 0
  end
  per_day[id] = per_day[id] + 1
  r[8] = math.max(r[8], day)
  local minute = math.floor(ts / 60000)
  local hour = math.floor(minute / 60)
  local per_hour = minutes[hour] or {}
  per_hour[minute % 60] = (per_hour[minute % 60] or 0) + 1
  minutes[hour] = per_hour
  if day >= TODAY - INDEX_DAYS and message_id ~= '' then
    local key = index_keys[day]
    if key == nil then
      key = fmt('%smi:%d', prefix, day)
      index_keys[day] = key
    end
    local pairs_of_day = index[key]
    if pairs_of_day == nil then
      pairs_of_day = {}
      index[key] = pairs_of_day
      index[#index + 1] = key
    end
    pairs_of_day[#pairs_of_day + 1] = message_id
    pairs_of_day[#pairs_of_day + 1] = id_text[id] .. ',' .. ts_text  -- the row's ms, as sent
    expiry[key] = (day + 2 + INDEX_DAYS) * 86400
  end
  -- Members never seen joining are `new` on their first active day.
  if r[1] == 0 then
    local j = joined(id)
    if j[3] == 0 or day < j[3] then
      if j[3] ~= 0 then set_bit(day_key('fs', j[3]), sid, 0) end
      set_bit(day_key('fs', day), sid, 1)
      j[3] = day
    end
  end
end

-- Write what count_message gathered: one BITFIELD of active bits per day (a bit that was
-- 0 makes the member newly active that day), one BITFIELD of counters, one HSET of ids.
local function flush_messages()
  for day, per_day in pairs(counts) do
    local sets, incrs = {}, {}
    for _, id in ipairs(per_day.order) do
      local sid, n = id_text[id], #sets
      sets[n + 1], sets[n + 2], sets[n + 3], sets[n + 4] = 'SET', 'u1', sid, '1'
      incrs[n + 1], incrs[n + 2], incrs[n + 3], incrs[n + 4] =
        'INCRBY', 'u16', '#' .. sid, fmt('%d', per_day[id])
    end
    local was = chunked('BITFIELD', day_key('a', day), {}, sets)
    for i, id in ipairs(per_day.order) do
      if was[i] == 0 then
        add(day, 'u')
        members[id][6] = members[id][6] + 1
      end
    end
    chunked('BITFIELD', day_key('c', day), {'OVERFLOW', 'SAT'}, incrs)
  end
  counts = {}
  for _, key in ipairs(index) do chunked('HSET', key, {}, index[key]) end
  index = {}
  flush_bits()
end

local function apply_join(id, r, day, ts, channel, inviter)
  add(day, 'j')
  -- The first join defines the cohort, channel and inviter, whatever order joins arrive in.
  if r[1] == 0 or ts < r[1] then
    if r[1] ~= 0 then
      set_bit(day_key('co', r[7]), id_text[id], 0)
    end
    set_bit(day_key('co', day), id_text[id], 1)
    r[1], r[7] = ts, day
    local j = joined(id)
    if j[3] ~= 0 then
      set_bit(day_key('fs', j[3]), id_text[id], 0)
      j[3] = 0
    end
    j[1] = channel_id(channel)
    j[2] = inviter ~= '' and dense_id(inviter) or 0
  end
  r[2] = math.max(r[2], ts)
end

-- Claim the batch's fingerprints, day by day. Level L of a day has 2^L sets; a
-- fingerprint goes to its set of the day's newest level, which grows when that set is
-- full (before it would pass BUCKET, so every set stays an intset), and is looked up on
-- every level. Returns fresh[i] = true for each event claimed for the first time.
local function claim_all()
  local fresh, by_day, days = {}, {}, {}
  for i, e in ipairs(batch) do
    local list = by_day[e[6]]
    if list == nil then
      list = {}
      by_day[e[6]] = list
      days[#days + 1] = e[6]
    end
    list[#list + 1] = i
  end
  for _, day in ipairs(days) do
    local dkey = day_key('d', day)
    local level = tonumber(call('HGET', dkey, 'dl') or '0')
    local start = level
    -- The lowest level of the day's sets holding each fingerprint, one SMISMEMBER per set.
    local asks, asked = {}, {}
    for _, i in ipairs(by_day[day]) do
      local e = batch[i]
      for l = 0, level do
        local key = dedup_key(day, l, e[3])
        local q = asks[key]
        if q == nil then
          q = {level = l}
          asks[key] = q
          asked[#asked + 1] = key
        end
        q[#q + 1] = e[2]
      end
    end
    local held = {}
    for _, key in ipairs(asked) do
      local q = asks[key]
      for n, found in ipairs(chunked('SMISMEMBER', key, {}, q)) do
        local fp = q[n]
        if found == 1 and (held[fp] == nil or q.level < held[fp]) then held[fp] = q.level end
      end
    end
    -- Each event in batch order, as one SADD per event would have seen them.
    local adds, added = {}, {}
    local function add_to(key, fp)
      local list = adds[key]
      if list == nil then
        list = {}
        adds[key] = list
        added[#added + 1] = key
      end
      list[#list + 1] = fp
      cards[key] = cards[key] + 1
    end
    for _, i in ipairs(by_day[day]) do
      local e = batch[i]
      local fp, hash = e[2], e[3]
      local at = held[fp]
      if at == nil or at >= level then
        local key = dedup_key(day, level, hash)
        expiry[key] = (day + 2) * 86400 + keep
        if at == nil then
          cards[key] = cards[key] or call('SCARD', key)
          if cards[key] >= BUCKET then
            level = level + 1
            key = dedup_key(day, level, hash)
            expiry[key] = (day + 2) * 86400 + keep
            cards[key] = cards[key] or call('SCARD', key)
          end
          add_to(key, fp)
          held[fp] = level
          fresh[i] = true
        end
      end
    end
    if level ~= start then call('HSET', dkey, 'dl', level) end
    for _, key in ipairs(added) do chunked('SADD', key, {}, adds[key]) end
  end
  return fresh
end

local fresh = claim_all()
local deleted = {}  -- message ids in `del` (moderation deleted them before they came)
do
  local seen, wanted, message_ids = {}, {}, {}
  for i, e in ipairs(batch) do
    if fresh[i] then
      if not seen[e[4]] then
        seen[e[4]] = true
        wanted[#wanted + 1] = e[4]
      end
      if e[1] == 'm' then message_ids[#message_ids + 1] = e[7] end
    end
  end
  known_ids(wanted)
  -- Records to read: the known members', and the zeros where the new ones' will go (the
  -- next ids, in one span).
  local known, fresh_members = {}, 0
  for _, member in ipairs(wanted) do
    if id_of[member] then
      known[#known + 1] = id_of[member]
    else
      fresh_members = fresh_members + 1
    end
  end
  if fresh_members > 0 then
    last_id = tonumber(call('GET', prefix .. 'seq') or '0')
    for k = 1, fresh_members do known[#known + 1] = last_id + k end
  end
  table.sort(known)
  mem_spans, jn_spans = read_spans(mem, REC_BYTES, known), read_spans(jn, JREC_BYTES, known)
  if has_del and #message_ids > 0 then
    for n, found in ipairs(chunked('SMISMEMBER', del, {}, message_ids)) do
      if found == 1 then deleted[message_ids[n]] = true end
    end
  end
end

for i, e in ipairs(batch) do
  local kind, member, ts, day = e[1], e[4], tonumber(e[5]), e[6]
  if not fresh[i] then
    dups = dups + 1
  else
    applied[kind] = applied[kind] + 1
    local id = dense_id(member)
    local r = record(id)
    if kind == 'm' then
      r[4] = math.max(r[4], ts)
      if deleted[e[7]] then
        unseen = unseen + 1  -- moderation deleted it before it arrived
      else
        count_message(id, r, day, ts, e[5], e[7])
      end
    elseif kind == 'j' then
      apply_join(id, r, day, ts, e[7], e[8])
    else
      add(day, 'l')
      r[3] = math.max(r[3], ts)
    end
  end
end
flush_messages()

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
local recent_args, quiet_args, gone, records_out = {}, {}, {}, {}
for id, r in pairs(members) do
  local was, now, j = before[id] and acq_flags(before[id]), acq_flags(r), joins[id]
  if not same(was, now) or (j and (j[1] ~= j.orig[1] or j[2] ~= j.orig[2])) then
    j = joined(id)
    -- Members recorded before the counts existed were never added: nothing to take back.
    if j.orig[4] == 1 then acq_delta(was, j.orig[1], j.orig[2], -1) end
    acq_delta(now, j[1], j[2], 1)
    j[4] = now and 1 or 0
  end
  local sid = id_text[id] or fmt('%d', id)
  records_out[id] = pack(REC_FORMAT, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
  if r[4] > 0 then
    recent_args[#recent_args + 1] = fmt('%d', r[4])
    recent_args[#recent_args + 1] = sid
  end
  if r[3] == 0 or math.max(r[2], r[4]) > r[3] then
    local score = r[4]
    if score == 0 then score = r[1] - NEVER_SPOKE_OFFSET end
    quiet_args[#quiet_args + 1] = fmt('%d', score)
    quiet_args[#quiet_args + 1] = sid
  else
    gone[#gone + 1] = sid
  end
end
if #recent_args > 0 then chunked('ZADD', recent, {'GT'}, recent_args) end
if #quiet_args > 0 then chunked('ZADD', quiet, {}, quiet_args) end
if #gone > 0 then chunked('ZREM', quiet, {}, gone) end
write_records(mem, REC_BYTES, mem_spans, records_out)
local joins_out = {}
for id, j in pairs(joins) do
  if j[1] ~= j.orig[1] or j[2] ~= j.orig[2] or j[3] ~= j.orig[3] or j[4] ~= j.orig[4] then
    joins_out[id] = pack(JREC_FORMAT, j[1], j[2], j[3], j[4])
  end
end
write_records(jn, JREC_BYTES, jn_spans, joins_out)
write_new_ids()
flush_bits()
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
