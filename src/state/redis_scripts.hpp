#pragma once

// The Lua scripts of the Redis store: every change that must be atomic across processes is one
// script (see redis_store.cpp for the keys). Plain data.

#include <string>

namespace failover::detail::redis_scripts {

// Raises a time field to ARGV[2] (never lowers it) and keeps the key alive ARGV[3] ms at least.
inline constexpr const char* kRaiseScript = R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if current == nil or current < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
)lua";

// Reservations live in one hash: field {holder} = nanos held, field {holder}@ = ms until which
// the holder counts as alive. live_held sums the live ones and, with `prune`, drops the others.
inline constexpr const char* kLiveHeldLua = R"lua(
local function live_held(key, now, prune)
  local all = redis.call('HGETALL', key)
  local alive = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], -1) == '@' then alive[string.sub(all[i], 1, -2)] = tonumber(all[i + 1]) end
  end
  local held = 0
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, -1) ~= '@' then
      local n = tonumber(all[i + 1])
      if alive[f] and alive[f] >= now and n then
        held = held + n
      elseif prune then
        redis.call('HDEL', key, f, f .. '@')
      end
    end
  end
  return held
end
local function spent_of(key)
  local v = redis.call('GET', key)
  if not v then return 0 end
  return tonumber(v)
end
)lua";

// KEYS: calls. ARGV: the calls to append ('0'/'1'), how many to keep, ttl ms. Returns the window.
inline constexpr const char* kRecordCallsScript = R"lua(
local w = redis.call('GET', KEYS[1]) or ''
if not string.match(w, '^[01]*$') then return redis.error_reply('calls window holds something not 0s and 1s') end
w = w .. ARGV[1]
local keep = tonumber(ARGV[2])
if #w > keep then w = string.sub(w, -keep) end
redis.call('SET', KEYS[1], w, 'PX', ARGV[3])
return w
)lua";

// KEYS: day, month, held. ARGV: holder, nanos, day cap, month cap (-1: none), now ms, alive-until
// ms, held key ttl ms, admit alone (1/0). Returns 1 when reserved, 0 when a cap refuses, an
// error for garbage.
inline const std::string kReserveScript = std::string(kLiveHeldLua) + R"lua(
local day, month = spent_of(KEYS[1]), spent_of(KEYS[2])
if not day or not month then return redis.error_reply('spend key holds something not a number') end
local nanos, now = tonumber(ARGV[2]), tonumber(ARGV[5])
local held = live_held(KEYS[3], now, true)
for i, spent in ipairs({day, month}) do
  local cap = tonumber(ARGV[2 + i])
  local alone = ARGV[8] == '1' and held == 0
  if cap >= 0 and (spent >= cap or (not alone and spent + held + nanos > cap)) then return 0 end
end
redis.call('HINCRBY', KEYS[3], ARGV[1], nanos)
redis.call('HSET', KEYS[3], ARGV[1] .. '@', ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return 1
)lua";

// KEYS: day, month, held. ARGV: holder, released, spent, day ttl ms, month ttl ms.
inline constexpr const char* kSettleScript = R"lua(
local released, spent = tonumber(ARGV[2]), tonumber(ARGV[3])
if released > 0 and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[3], ARGV[1], -released) <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
end
if spent > 0 then
  redis.call('INCRBY', KEYS[1], spent)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('INCRBY', KEYS[2], spent)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1
)lua";

// KEYS: held. ARGV: holder, alive-until ms, held nanos or '' (keep), key ttl ms.
inline constexpr const char* kKeepScript = R"lua(
redis.call('HSET', KEYS[1], ARGV[1] .. '@', ARGV[2])
if ARGV[3] ~= '' then
  if tonumber(ARGV[3]) > 0 then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
)lua";

// KEYS: day, month, held. ARGV: now ms. Returns {day, month, held}.
inline const std::string kSpendScript = std::string(kLiveHeldLua) + R"lua(
local day, month = spent_of(KEYS[1]), spent_of(KEYS[2])
if not day or not month then return redis.error_reply('spend key holds something not a number') end
return {day, month, live_held(KEYS[3], tonumber(ARGV[1]), false)}
)lua";

// KEYS: bucket. ARGV: rpm, tpm (-1: none), now ms, 'take' or 'give', then for 'take': tokens
// a request, count; for 'give': requests, tokens; last the key's ttl ms. A bucket starts full and
// refills continuously. 'take' grants as many of `count` requests as the buckets hold and returns
// that number, or, granting none, minus the ms until one could be; 'give' returns 0.
inline constexpr const char* kBucketScript = R"lua(
local rpm, tpm, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'requests', 'tokens', 'at')
local r, t, at = math.max(rpm, 0), math.max(tpm, 0), now
if v[3] then
  r, t, at = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  if not (r and t and at) then return redis.error_reply('bucket holds something not a number') end
  if now > at then
    local minutes = (now - at) / 60000
    if rpm >= 0 then r = math.min(rpm, r + rpm * minutes) end
    if tpm >= 0 then t = math.min(tpm, t + tpm * minutes) end
    at = now
  end
end
local result = 0
if ARGV[4] == 'take' then
  local tokens, n = tonumber(ARGV[5]), tonumber(ARGV[6])
  if rpm >= 0 then n = math.min(n, math.floor(r + 1e-9)) end
  if tpm >= 0 and tokens >= tpm then
    if t + 1e-9 < tpm then n = 0 else n = math.min(n, 1) end
  elseif tpm >= 0 and tokens > 0 then
    n = math.min(n, math.floor((t + 1e-9) / tokens))
  end
  if n >= 1 then
    r, t = r - n, t - n * tokens
    result = n
  else
    local wait = 0
    if rpm >= 0 and r + 1e-9 < 1 then wait = math.max(wait, (1 - r) / rpm * 60000) end
    local need = math.min(tokens, math.max(tpm, 0))
    if tpm >= 0 and t + 1e-9 < need then wait = math.max(wait, (need - t) / tpm * 60000) end
    result = -math.max(1, math.ceil(wait - 1e-6))
  end
else
  if rpm >= 0 then r = math.min(rpm, r + tonumber(ARGV[5])) end
  if tpm >= 0 then t = math.min(tpm, t + tonumber(ARGV[6])) end
end
redis.call('HSET', KEYS[1], 'requests', string.format('%.17g', r), 'tokens',
           string.format('%.17g', t), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return result
)lua";

// KEYS: canary. ARGV: expected generation ('' = any), state, step, promoted, reason, ttl ms.
// Returns the new generation, or 0 when the expected one no longer holds.
inline constexpr const char* kCanaryScript = R"lua(
local gen = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0') or 0
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= gen then return 0 end
gen = gen + 1
redis.call('HSET', KEYS[1], 'generation', gen, 'state', ARGV[2], 'step', ARGV[3],
           'promoted', ARGV[4], 'reason', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return gen
)lua";

}  // namespace failover::detail::redis_scripts
