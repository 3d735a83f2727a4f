-- Count the window ending at this event, after adding it; forget what even the newest
-- event's window no longer covers. KEYS[1] zset; ARGV score_ms, event id, window_ms.
local score = tonumber(ARGV[1])
local window = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], score, ARGV[2])
local newest = tonumber(redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (newest - window))
redis.call('PEXPIRE', KEYS[1], window + 60000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (score - window), score)
