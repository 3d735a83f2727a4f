-- Drop the claims a token holds (KEYS, token ARGV[1]); returns how many were dropped.
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
