-- A page of one group's inviters, ranked inside Redis: only the page's candidates go back.
--
-- KEYS[1]  the group's `names` key (dense id -> member id; it routes the call to its slot)
-- ARGV[1]  the group's key prefix, qy:{<group>}:
-- ARGV[2]  first day number of the range (first-join days, local)
-- ARGV[3]  last day number of the range
-- ARGV[4]  page size (1..1000)
-- Returns flat rows {dense id, member id, low lanes, high lanes, ...}: every inviter ranked
-- above the page's last (retained_d7, joins) and, of those tied with it, the ones with the
-- smallest member ids (byte order) to fill the page. The caller sorts them; the lanes are
-- those of the `ai:<day>` fields summed over the days (joins + still·2^17 + spoke·2^34,
-- retained_d7 + retained_d30·2^26).
local call, sub, byte, tonumber, unpack = redis.call, string.sub, string.byte, tonumber, unpack
local names, prefix = KEYS[1], ARGV[1]
local first, last, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local LANE17, LANE26 = 131072, 67108864
local CHUNK = 4000  -- arguments per command (Lua's C stack holds 8000)

local lo, hi = {}, {}
for d = first, last do
  local f = call('HGETALL', prefix .. 'ai:' .. d)
  for i = 1, #f, 2 do
    local name = f[i]
    local id = sub(name, 2)
    if byte(name, 1) == 105 then  -- i<id>
      lo[id] = (lo[id] or 0) + tonumber(f[i + 1])
    else  -- I<id>
      hi[id] = (hi[id] or 0) + tonumber(f[i + 1])
    end
  end
end

-- Rank keys retained_d7·2^17 + joins; the page ends at the key where the count reaches limit.
local rank, members_at = {}, {}
for id, l in pairs(lo) do
  local joins = l % LANE17
  if joins > 0 then
    local k = ((hi[id] or 0) % LANE26) * LANE17 + joins
    rank[id] = k
    members_at[k] = (members_at[k] or 0) + 1
  end
end
local keys = {}
for k in pairs(members_at) do keys[#keys + 1] = k end
table.sort(keys, function(a, b) return a > b end)
local cut, above = nil, 0
for _, k in ipairs(keys) do
  if above + members_at[k] >= limit then cut = k break end
  above = above + members_at[k]
end
if #keys == 0 then return {} end
if cut == nil then  -- fewer inviters than the page holds: all of them
  cut = keys[#keys]
  above = above - members_at[cut]
end

local chosen, tied = {}, {}
for id, k in pairs(rank) do
  if k > cut then chosen[#chosen + 1] = id elseif k == cut then tied[#tied + 1] = id end
end

-- Member ids of a list of dense ids, id -> member id.
local function member_ids(list, into)
  for s = 1, #list, CHUNK do
    local part = {}
    for i = s, math.min(s + CHUNK - 1, #list) do part[#part + 1] = list[i] end
    local found = call('HMGET', names, unpack(part))
    for i, m in ipairs(found) do
      if m then into[part[i]] = m end
    end
  end
  return into
end

local member = member_ids(chosen, {})
local need = limit - above
local tied_member = member_ids(tied, {})
if #tied > need then
  -- Order the tie by member id in a scratch sorted set (equal scores sort by bytes).
  local scratch, by_member = prefix .. 'tmp:inviters', {}
  call('DEL', scratch)
  local args = {}
  for _, id in ipairs(tied) do
    local m = tied_member[id]
    if m then
      by_member[m] = id
      args[#args + 1] = 0
      args[#args + 1] = m
      if #args >= CHUNK then call('ZADD', scratch, unpack(args)) args = {} end
    end
  end
  if #args > 0 then call('ZADD', scratch, unpack(args)) end
  tied = {}
  for _, m in ipairs(call('ZRANGE', scratch, 0, need - 1)) do tied[#tied + 1] = by_member[m] end
  call('DEL', scratch)
end
for _, id in ipairs(tied) do
  chosen[#chosen + 1] = id
  member[id] = tied_member[id]
end

local out = {}
for _, id in ipairs(chosen) do
  if member[id] then
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, member[id], lo[id], hi[id] or 0
  end
end
return out
