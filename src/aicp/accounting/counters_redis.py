"""Budget counters in Redis: Lua scripts, so a reservation is atomic across processes.

One hash per (budget, window) with fields `s` (spent) and `r` (reserved), in
micro-dollars; it expires a day after its window ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aicp.accounting.counters import Hold, Outcome

#: KEYS: counters. ARGV: amount, then per key its limit (-1: none) and expiry (0: none).
_RESERVE = """
local amount = tonumber(ARGV[1])
local n = #KEYS
local found = {}
for i = 1, n do
  local s = tonumber(redis.call('HGET', KEYS[i], 's') or '0')
  local r = tonumber(redis.call('HGET', KEYS[i], 'r') or '0')
  found[i] = {s, r}
end
for i = 1, n do
  local limit = tonumber(ARGV[1 + i])
  if limit >= 0 and found[i][1] + found[i][2] + amount > limit then
    local out = {i}
    for j = 1, n do out[#out + 1] = found[j][1]; out[#out + 1] = found[j][2] end
    return out
  end
end
local out = {0}
for i = 1, n do
  local r = redis.call('HINCRBY', KEYS[i], 'r', amount)
  local ttl = tonumber(ARGV[1 + n + i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
  out[#out + 1] = found[i][1]; out[#out + 1] = r
end
return out
"""

#: KEYS: counters. ARGV: reserved, actual.
_SETTLE = """
local out = {}
for i = 1, #KEYS do
  local r = redis.call('HINCRBY', KEYS[i], 'r', -tonumber(ARGV[1]))
  if r < 0 then redis.call('HSET', KEYS[i], 'r', 0); r = 0 end
  local s = redis.call('HINCRBY', KEYS[i], 's', tonumber(ARGV[2]))
  out[#out + 1] = s; out[#out + 1] = r
end
return out
"""

#: A counter outlives its window by a day, for reports and late settlements.
GRACE_S = 86_400


def _key(hold: Hold) -> str:
    return f"aicp:budget:{hold.budget_id}:{int(hold.window)}"


def _ttl(hold: Hold, now: float) -> int:
    return 0 if hold.ends is None else max(1, int(hold.ends - now) + GRACE_S)


def _pairs(flat: Sequence[Any]) -> list[tuple[int, int]]:
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


class RedisCounters:
    name = "redis"

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        # redis-py's asyncio pool fails ("Too many connections") instead of waiting when
        # it is exhausted; queue here, on a share of it, so a burst waits instead of a 500.
        pool_size = getattr(getattr(redis, "connection_pool", None), "max_connections", 100)
        self._slots = asyncio.Semaphore(max(1, min(pool_size, 10_000) // 2))
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)

    async def prime(self, hold: Hold, spent: int) -> None:
        key = _key(hold)
        if await self.redis.hsetnx(key, "s", spent):
            ttl = _ttl(hold, time.time())
            if ttl:
                await self.redis.expire(key, ttl)

    async def reserve(self, holds: Sequence[Hold], amount: int) -> Outcome:
        now = time.time()
        args = [amount, *(-1 if h.limit is None else h.limit for h in holds)]
        args += [_ttl(h, now) for h in holds]
        async with self._slots:
            out = await self._reserve(keys=[_key(h) for h in holds], args=args)
        refused = int(out[0])
        return Outcome(refused - 1 if refused else None, _pairs(out[1:]))

    async def settle(
        self, holds: Sequence[Hold], reserved: int, actual: int
    ) -> list[tuple[int, int]]:
        async with self._slots:
            out = await self._settle(keys=[_key(h) for h in holds], args=[reserved, actual])
        return _pairs(out)

    async def read(self, hold: Hold) -> tuple[int, int]:
        s, r = await self.redis.hmget(_key(hold), ["s", "r"])
        return int(s or 0), int(r or 0)

    async def aclose(self) -> None:
        return None
