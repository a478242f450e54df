"""The rate-limit buckets, in process and in Redis, with an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from aicp.accounting.ratelimit import (
    PERIOD_MS,
    REQUESTS,
    TOKENS,
    Charge,
    Limit,
    MemoryStore,
    RateLimiter,
)
from aicp.storage.redis import connect_redis
from tests.backends import Counters


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(counters: Counters, clock: Clock) -> RateLimiter:
    return RateLimiter(counters.redis, clock)


def rpm(owner: str, n: int, scope: str = "key") -> Limit:
    return Limit(scope, owner, REQUESTS, n)


def tpm(owner: str, n: int, scope: str = "key") -> Limit:
    return Limit(scope, owner, TOKENS, n)


async def admitted(limiter: RateLimiter, charges: list[Charge], tries: int) -> int:
    n = 0
    for _ in range(tries):
        n += (await limiter.acquire(charges)).admitted
    return n


async def test_exactly_the_limit_is_admitted_at_once(limiter: RateLimiter) -> None:
    charges = [Charge(rpm("k", 10), 1)]
    assert await admitted(limiter, charges, 25) == 10
    refused = await limiter.acquire(charges)
    assert not refused.admitted
    # One request drips back every 60 s / 10 = 6 s.
    assert refused.retry_ms == 6000
    assert refused.fits == (False,)


async def test_the_window_slides(limiter: RateLimiter, clock: Clock) -> None:
    charges = [Charge(rpm("k", 10), 1)]
    assert await admitted(limiter, charges, 10) == 10
    clock.advance(5.999)
    assert await admitted(limiter, charges, 1) == 0
    clock.advance(0.001)
    assert await admitted(limiter, charges, 3) == 1  # exactly one more after 6 s
    clock.advance(30)
    assert await admitted(limiter, charges, 10) == 5
    clock.advance(60)
    assert await admitted(limiter, charges, 20) == 10  # a quiet minute refills it all


async def test_over_a_minute_at_the_rate_nothing_is_refused(
    limiter: RateLimiter, clock: Clock
) -> None:
    charges = [Charge(rpm("k", 60), 1)]
    for _ in range(180):
        assert (await limiter.acquire(charges)).admitted
        clock.advance(1.0)


async def test_several_limits_are_all_or_nothing(limiter: RateLimiter) -> None:
    key, user = rpm("k", 5), rpm("u", 2, "user")
    both = [Charge(key, 1), Charge(user, 1)]
    assert await admitted(limiter, both, 4) == 2
    out = await limiter.acquire(both)
    assert not out.admitted and out.fits == (True, False)
    # The refused requests took nothing from the key: it still has 3 left.
    assert await admitted(limiter, [Charge(key, 1)], 5) == 3


async def test_the_retry_time_is_that_of_the_slowest_limit(limiter: RateLimiter) -> None:
    a, b = rpm("a", 2), rpm("b", 1, "team")
    assert await admitted(limiter, [Charge(a, 1), Charge(b, 1)], 1) == 1
    assert await admitted(limiter, [Charge(a, 1)], 1) == 1
    out = await limiter.acquire([Charge(a, 1), Charge(b, 1)])
    assert not out.admitted
    assert out.retry_ms == 60_000  # b: 60 s per request; a would be back after 30 s


async def test_tokens_are_corrected_with_actual_usage(limiter: RateLimiter) -> None:
    limit = tpm("k", 1000)
    assert (await limiter.acquire([Charge(limit, 600)])).admitted
    assert not (await limiter.acquire([Charge(limit, 600)])).admitted
    await limiter.adjust([(limit, -500)])  # the first used 100, not 600
    out = await limiter.acquire([Charge(limit, 600)])
    assert out.admitted
    assert out.levels == (700 * PERIOD_MS,)


async def test_usage_over_the_estimate_is_a_debt(limiter: RateLimiter, clock: Clock) -> None:
    limit = tpm("k", 1000)
    assert (await limiter.acquire([Charge(limit, 100)])).admitted
    await limiter.adjust([(limit, 1400)])  # used 1500: half a minute in debt
    out = await limiter.acquire([Charge(limit, 1)])
    assert not out.admitted and out.retry_ms == 30_000 + 60
    clock.advance(30.06)
    assert (await limiter.acquire([Charge(limit, 1)])).admitted


async def test_a_release_never_fills_beyond_the_limit(limiter: RateLimiter) -> None:
    limit = tpm("k", 100)
    await limiter.adjust([(limit, -1000)])
    assert await admitted(limiter, [Charge(limit, 50)], 5) == 2


async def test_a_request_larger_than_the_limit_waits_for_a_full_bucket(
    limiter: RateLimiter, clock: Clock
) -> None:
    limit = tpm("k", 1000)
    assert (await limiter.acquire([Charge(limit, 1)])).admitted
    big = await limiter.acquire([Charge(limit, 5000)])
    assert not big.admitted and big.retry_ms == 60  # until the one token has drained
    clock.advance(0.06)
    assert (await limiter.acquire([Charge(limit, 5000)])).admitted
    # ... and then the whole 5000 is owed: about five minutes before the next token.
    later = await limiter.acquire([Charge(limit, 1)])
    assert not later.admitted and later.retry_ms == 4 * 60_000 + 60


async def test_the_first_deployment_with_room_is_charged(limiter: RateLimiter) -> None:
    key, d1, d2 = rpm("k", 100), rpm("a/m", 1, "deployment"), rpm("b/m", 1, "deployment")
    charges = [Charge(key, 1), Charge(d1, 1, 1), Charge(d2, 1, 2)]
    first = await limiter.acquire(charges)
    second = await limiter.acquire(charges)
    assert (first.admitted, first.chosen) == (True, 1)
    assert (second.admitted, second.chosen) == (True, 2)
    third = await limiter.acquire(charges)
    assert not third.admitted and third.retry_ms == 60_000
    # With an unlimited deployment after them the request goes there instead.
    fourth = await limiter.acquire(charges, has_fallback=True)
    assert (fourth.admitted, fourth.chosen) == (True, 0)
    # The key was charged three times (the refusal took nothing).
    assert await admitted(limiter, [Charge(key, 1)], 100) == 97


async def test_idle_buckets_are_swept_from_memory(clock: Clock) -> None:
    store = MemoryStore(clock)
    store.SWEEP_EVERY = 2
    await store.acquire([Charge(rpm("old", 10), 1)], False)
    clock.advance(7)
    await store.acquire([Charge(rpm("new", 10), 1)], False)
    assert set(store.buckets) == {"key:new:r"}


@pytest.mark.redis
async def test_two_limiters_sharing_redis_are_exact_together(redis_url: str, clock: Clock) -> None:
    clients = [await connect_redis(redis_url) for _ in range(2)]
    try:
        limiters = [RateLimiter(c, clock) for c in clients]
        charges = [Charge(rpm("k", 50), 1), Charge(tpm("k", 10_000), 100)]
        results = await asyncio.gather(*(limiters[i % 2].acquire(charges) for i in range(200)))
        assert sum(r.admitted for r in results) == 50
        clock.advance(1.2)  # one request's worth of time: exactly one more
        results = await asyncio.gather(*(limiters[i % 2].acquire(charges) for i in range(20)))
        assert sum(r.admitted for r in results) == 1
    finally:
        for c in clients:
            await c.aclose()


@pytest.mark.redis
async def test_redis_uses_its_own_clock_when_none_is_given(redis_url: str) -> None:
    client = await connect_redis(redis_url)
    try:
        limiter = RateLimiter(client)
        charges = [Charge(rpm("k", 3), 1)]
        outs = [await limiter.acquire(charges) for _ in range(4)]
        assert [o.admitted for o in outs] == [True, True, True, False]
        assert 19_000 < outs[-1].retry_ms <= 20_000
        ttl = await client.pttl("aicp:rl:key:k:r")
        assert 60_000 < ttl <= 61_000  # the bucket expires once it has drained
    finally:
        await client.aclose()
