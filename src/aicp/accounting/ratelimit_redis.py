"""Rate-limit buckets in Redis: one Lua script per decision, exact across processes.

Each bucket is a hash {l: level, t: last update in ms} that expires once it has
drained. The script mirrors `ratelimit.decide` (read every bucket, decide, then
write the charged ones), so a decision over several limits is one round trip
and all or nothing. Time is the Redis server's (`TIME`) unless the caller
passes one, so gateway processes with skewed clocks still agree.

Buckets of one request may live in different hash slots: this needs a single
Redis (or a primary), not Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aicp.accounting.ratelimit import PERIOD_MS, Charge, Limit, Outcome

# ARGV: now ms ("" = server time), period ms, has fallback (0/1), then per key:
# limit per minute, cost, group. Returns admitted, chosen, retry ms, now ms, then
# per key: fits (0/1), level after the decision.
ACQUIRE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local period = tonumber(ARGV[2])
local n = #KEYS
local limit, cost, group, level, wait = {}, {}, {}, {}, {}
local groups = 0
local gwait = {[0] = -1}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  limit[i] = tonumber(ARGV[b + 1])
  cost[i] = tonumber(ARGV[b + 2])
  group[i] = tonumber(ARGV[b + 3])
  local g = group[i]
  if g > groups then groups = g end
  local st = redis.call('HMGET', KEYS[i], 'l', 't')
  local l = tonumber(st[1]) or 0
  local elapsed = now - (tonumber(st[2]) or now)
  if elapsed < 0 then elapsed = 0 end
  l = l - elapsed * limit[i]
  if l < 0 then l = 0 end
  level[i] = l
  local over = l + math.min(cost[i], limit[i]) * period - limit[i] * period
  if over <= 0 then wait[i] = -1 else wait[i] = math.ceil(over / limit[i]) end
  if gwait[g] == nil or wait[i] > gwait[g] then gwait[g] = wait[i] end
end
local chosen = 0
local depwait = nil
for g = 1, groups do
  if gwait[g] < 0 then chosen = g break end
  if depwait == nil or gwait[g] < depwait then depwait = gwait[g] end
end
local depsok = chosen > 0 or ARGV[3] == '1' or groups == 0
local admitted = gwait[0] < 0 and depsok
local retry = gwait[0]
if retry < 0 then retry = 0 end
if not depsok and depwait > retry then retry = depwait end
local out = {admitted and 1 or 0, chosen, retry, now}
for i = 1, n do
  local l = level[i]
  if admitted and cost[i] > 0 and (group[i] == 0 or group[i] == chosen) then
    l = l + cost[i] * period
    redis.call('HSET', KEYS[i], 'l', string.format('%d', l), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(l / limit[i]) + 1000)
  end
  out[#out + 1] = wait[i] < 0 and 1 or 0
  out[#out + 1] = l
end
return out
"""

# ARGV: now ms ("" = server time), period ms, then per key: limit per minute, delta tokens.
ADJUST = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local period = tonumber(ARGV[2])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + i * 2])
  local delta = tonumber(ARGV[2 + i * 2])
  local st = redis.call('HMGET', KEYS[i], 'l', 't')
  local l = tonumber(st[1]) or 0
  local elapsed = now - (tonumber(st[2]) or now)
  if elapsed < 0 then elapsed = 0 end
  l = l - elapsed * limit
  if l < 0 then l = 0 end
  l = l + delta * period
  if l <= 0 then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HSET', KEYS[i], 'l', string.format('%d', l), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(l / limit) + 1000)
  end
end
return 1
"""


class RedisStore:
    def __init__(self, redis: Any, prefix: str = "aicp:rl:") -> None:
        self.redis = redis
        self.prefix = prefix
        # register_script sends EVALSHA and loads the script again after a NOSCRIPT.
        self._acquire = redis.register_script(ACQUIRE)
        self._adjust = redis.register_script(ADJUST)

    async def acquire(
        self, charges: Sequence[Charge], has_fallback: bool, now_ms: int | None
    ) -> Outcome:
        keys = [self.prefix + c.limit.bucket for c in charges]
        args: list[int | str] = ["" if now_ms is None else now_ms, PERIOD_MS, int(has_fallback)]
        for c in charges:
            args += [c.limit.per_minute, c.cost, c.group]
        reply = await self._acquire(keys=keys, args=args)
        values = [int(v) for v in reply]
        admitted, chosen, retry, now = values[:4]
        rest = values[4:]
        return Outcome(
            bool(admitted),
            chosen,
            retry,
            now,
            tuple(bool(f) for f in rest[0::2]),
            tuple(rest[1::2]),
        )

    async def adjust(self, changes: Sequence[tuple[Limit, int]], now_ms: int | None) -> None:
        keys = [self.prefix + limit.bucket for limit, _ in changes]
        args: list[int | str] = ["" if now_ms is None else now_ms, PERIOD_MS]
        for limit, delta in changes:
            args += [limit.per_minute, delta]
        await self._adjust(keys=keys, args=args)
