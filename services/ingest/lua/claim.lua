-- One group-commit round of a source's dedup keys: marks first, then claims.
--
-- KEYS[1..ARGV[1]]  keys of acknowledged events: set to 'seen' for ARGV[2] seconds
-- KEYS[ARGV[1]+1..] keys to claim: SET ... PX ARGV[3] with its request's token ARGV[3 + i]
-- Returns, per claimed key, what it held: 0 absent or already this token's (mine),
-- 1 seen, 2 another token's (in flight elsewhere).
local marks = tonumber(ARGV[1])
for i = 1, marks do
  redis.call('SET', KEYS[i], 'seen', 'EX', ARGV[2])
end
local out = {}
for i = marks + 1, #KEYS do
  local token = ARGV[3 + i - marks]
  local value = redis.call('GET', KEYS[i])
  if not value then
    redis.call('SET', KEYS[i], token, 'PX', ARGV[3])
    out[i - marks] = 0
  elseif value == 'seen' then
    out[i - marks] = 1
  elseif value == token then
    out[i - marks] = 0
  else
    out[i - marks] = 2
  end
end
return out
