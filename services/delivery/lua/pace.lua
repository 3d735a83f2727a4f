-- One token bucket with a pause, shared by every delivery replica.
-- KEYS[1] the bucket (hash: tokens, ts), KEYS[2] the pause key (set with a TTL by a hint).
-- ARGV[1] rate in tokens per second, ARGV[2] capacity, ARGV[3] cost (negative: refund).
-- Returns 0 when the cost was taken (or refunded), else the milliseconds until it could be.
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if cost > 0 then
  local paused = redis.call('PTTL', KEYS[2])
  if paused > 0 then
    return paused
  end
end

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(now - ts, 0) * rate / 1000)

local wait = 0
if cost <= 0 or tokens >= cost then
  tokens = math.min(capacity, tokens - cost)
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
