-- Run one chunk of a query's bitmap program (see bitplan.py).
--
-- KEYS[1]  any key of the group (it routes the call to the group's slot)
-- ARGV[1]  seconds a scratch key lives if the client never deletes it
-- ARGV[2]  the program: one operation per line, an opcode then key numbers
-- ARGV[3...] the keys the program names, numbered from 1
-- Opcodes: C k (count), X d k... (AND into d, count d), OR/AND d k... (BITOP into d),
-- Z d s (size d to the member table: bit GET(s) + 1 cleared), E d (expire), D k... (delete).
-- Returns the counts, in program order.
local names = {}
for i = 3, #ARGV do names[i - 2] = ARGV[i] end
local out = {}
for line in string.gmatch(ARGV[2], '[^\n]+') do
  local op, keys = nil, {}
  for word in string.gmatch(line, '%S+') do
    if op == nil then op = word else keys[#keys + 1] = names[tonumber(word)] end
  end
  if op == 'C' then
    out[#out + 1] = redis.call('BITCOUNT', keys[1])
  elseif op == 'X' then
    redis.call('BITOP', 'AND', unpack(keys))
    out[#out + 1] = redis.call('BITCOUNT', keys[1])
  elseif op == 'OR' or op == 'AND' then
    redis.call('BITOP', op, unpack(keys))
  elseif op == 'Z' then
    redis.call('SETBIT', keys[1], tonumber(redis.call('GET', keys[2]) or '0') + 1, 0)
  elseif op == 'E' then
    redis.call('EXPIRE', keys[1], ARGV[1])
  elseif op == 'D' then
    redis.call('DEL', unpack(keys))
  end
end
return out
