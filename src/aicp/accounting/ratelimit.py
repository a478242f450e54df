"""RPM and TPM limits: the buckets, their stores, and the limiter the stages use.

Every limit is a GCRA bucket (a token bucket kept as one level and one time):
a limit of L per minute holds up to L, refills continuously at L per minute,
and a request is admitted when its cost fits. Levels are integers in units
of 1/60000 of a token-minute (a token costs `PERIOD_MS` units, a bucket drains
L units per millisecond), so the arithmetic is exact in Python and in Lua.
See docs/decisions.md for why a bucket rather than windows.

Several limits are taken at once, all or nothing: group 0 (the key, user and
team) must all fit; groups 1..G are the deployments of the route in order,
and the first whose limits all fit is charged with group 0. `has_fallback`
says an unlimited deployment follows them, so the deployments never refuse.
Stores: in process (here) and Redis (`ratelimit_redis`, one Lua script).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The period every limit is counted over: a minute, in milliseconds.
PERIOD_MS = 60_000

REQUESTS = "requests"
TOKENS = "tokens"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # "key" | "user" | "team" | "deployment"
    owner: str  # the key, user or team id, or the deployment's provider/model
    unit: str  # REQUESTS | TOKENS
    per_minute: int
    #: The bucket's name in a store: the limit's owner and unit, not its size.
    bucket: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bucket", f"{self.scope}:{self.owner}:{self.unit[0]}")


@dataclass(frozen=True, slots=True)
class Charge:
    limit: Limit
    cost: int
    group: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    admitted: bool
    #: The deployment group charged (1..G), or 0 for none.
    chosen: int
    #: When refused: milliseconds until the request would be admitted.
    retry_ms: int
    now_ms: int
    #: Per charge, in order: whether it fit, and its bucket's level after the decision.
    fits: tuple[bool, ...]
    levels: tuple[int, ...]


class Store(Protocol):
    async def acquire(
        self, charges: Sequence[Charge], has_fallback: bool, now_ms: int | None
    ) -> Outcome: ...

    async def adjust(self, changes: Sequence[tuple[Limit, int]], now_ms: int | None) -> None: ...


# --- bucket arithmetic, shared by the memory store and mirrored in the Lua script --------


def drained(level: int, last_ms: int, now_ms: int, per_minute: int) -> int:
    return max(0, level - max(0, now_ms - last_ms) * per_minute)


def overflow(level: int, cost: int, per_minute: int) -> int:
    """Milliseconds until `cost` fits a bucket at `level` (<= 0: it fits now).

    A cost above the limit needs only a full bucket (and then leaves a debt), so a
    request larger than a minute's allowance is slow, never impossible.
    """
    over = level + min(cost, per_minute) * PERIOD_MS - per_minute * PERIOD_MS
    return -1 if over <= 0 else -(-over // per_minute)


def remaining(level: int, per_minute: int) -> int:
    return max(0, (per_minute * PERIOD_MS - level) // PERIOD_MS)


def reset_ms(level: int, per_minute: int) -> int:
    """Milliseconds until the bucket is full again."""
    return -(-level // per_minute)


def decide(
    charges: Sequence[Charge], levels: Sequence[int], has_fallback: bool
) -> tuple[bool, int, int, list[bool]]:
    """(admitted, chosen group, retry ms, fits) for charges at their drained levels."""
    fits: list[bool] = []
    waits: dict[int, int] = {}
    groups = 0
    for charge, level in zip(charges, levels, strict=True):
        wait = overflow(level, charge.cost, charge.limit.per_minute)
        fits.append(wait < 0)
        groups = max(groups, charge.group)
        waits[charge.group] = max(waits.get(charge.group, -1), wait)
    chosen = 0
    dep_wait: int | None = None
    for g in range(1, groups + 1):
        if waits[g] < 0:
            chosen = g
            break
        dep_wait = waits[g] if dep_wait is None else min(dep_wait, waits[g])
    deps_ok = chosen > 0 or has_fallback or groups == 0
    wait = max(0, waits.get(0, 0))
    if not deps_ok and dep_wait is not None:
        wait = max(wait, dep_wait)
    return waits.get(0, -1) < 0 and deps_ok, chosen, wait, fits


class MemoryStore:
    """Buckets in this process: exact for one process, reset when it restarts."""

    #: Drained buckets are swept after this many admissions, so idle keys do not pile up.
    SWEEP_EVERY = 10_000

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or time.monotonic
        self.buckets: dict[str, tuple[int, int, int]] = {}  # bucket -> level, last, empty at
        self._writes = 0

    def _now(self, now_ms: int | None) -> int:
        return int(self.clock() * 1000) if now_ms is None else now_ms

    def _level(self, limit: Limit, now: int) -> int:
        state = self.buckets.get(limit.bucket)
        return 0 if state is None else drained(state[0], state[1], now, limit.per_minute)

    async def acquire(
        self, charges: Sequence[Charge], has_fallback: bool, now_ms: int | None = None
    ) -> Outcome:
        # No await between reading and writing: atomic within the event loop.
        now = self._now(now_ms)
        levels = [self._level(c.limit, now) for c in charges]
        admitted, chosen, wait, fits = decide(charges, levels, has_fallback)
        if admitted:
            for i, c in enumerate(charges):
                if c.cost > 0 and (c.group == 0 or c.group == chosen):
                    levels[i] += c.cost * PERIOD_MS
                    self._put(c.limit, levels[i], now)
            self._writes += 1
            if self._writes % self.SWEEP_EVERY == 0:
                self._sweep(now)
        return Outcome(admitted, chosen, wait, now, tuple(fits), tuple(levels))

    async def adjust(self, changes: Sequence[tuple[Limit, int]], now_ms: int | None = None) -> None:
        now = self._now(now_ms)
        for limit, delta in changes:
            self._put(limit, max(0, self._level(limit, now) + delta * PERIOD_MS), now)

    def _put(self, limit: Limit, level: int, now: int) -> None:
        self.buckets[limit.bucket] = (level, now, now + reset_ms(level, limit.per_minute))

    def _sweep(self, now: int) -> None:
        for k in [k for k, (_, _, empty_at) in self.buckets.items() if empty_at <= now]:
            del self.buckets[k]


class RateLimiter:
    """Takes and corrects charges in Redis when configured, else in this process."""

    def __init__(self, redis: Any, clock: Clock | None = None, prefix: str = "aicp:rl:") -> None:
        self.store: Store
        if redis is not None:
            from aicp.accounting.ratelimit_redis import RedisStore

            self.store = RedisStore(redis, prefix)
        else:
            self.store = MemoryStore()
        #: Injected in tests; otherwise the store's own clock (Redis: the server's).
        self.clock = clock

    def _now(self) -> int | None:
        return None if self.clock is None else int(self.clock() * 1000)

    async def acquire(self, charges: Sequence[Charge], has_fallback: bool = False) -> Outcome:
        return await self.store.acquire(charges, has_fallback, self._now())

    async def adjust(self, changes: Sequence[tuple[Limit, int]]) -> None:
        if changes:
            await self.store.adjust(changes, self._now())


def retry_seconds(retry_ms: int) -> int:
    """Retry-After in whole seconds, never 0 (a client would retry at once)."""
    return max(1, math.ceil(retry_ms / 1000))
