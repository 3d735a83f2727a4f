-- One group's line of the overview, read in one call.
--
-- KEYS[1]  the group's `ids` key (any key of the group: it routes the call to its slot)
-- ARGV[1]  the group's key prefix, qy:{<group>}:
-- ARGV[2]  the day number the line is for (DAU that day; WAU, MAU, 7-day sums ending then)
-- Returns {current members, dau, wau, mau, messages_7d, joins_7d, leaves_7d}.
local prefix, day = ARGV[1], tonumber(ARGV[2])
local scratch = prefix .. 'tmp:overview'
local function active(d) return prefix .. 'a:' .. d end
local week = {}
for d = day - 6, day do week[#week + 1] = active(d) end
local month = {scratch}
for d = day - 29, day - 7 do month[#month + 1] = active(d) end
local dau = redis.call('BITCOUNT', active(day))
redis.call('BITOP', 'OR', scratch, unpack(week))
local wau = redis.call('BITCOUNT', scratch)
redis.call('BITOP', 'OR', scratch, unpack(month))
local mau = redis.call('BITCOUNT', scratch)
redis.call('DEL', scratch)
local sums = {0, 0, 0}
for d = day - 6, day do
  local v = redis.call('HMGET', prefix .. 'd:' .. d, 'm', 'j', 'l')
  for i = 1, 3 do sums[i] = sums[i] + (tonumber(v[i]) or 0) end
end
return {redis.call('ZCARD', prefix .. 'quiet'), dau, wau, mau, sums[1], sums[2], sums[3]}
