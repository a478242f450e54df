"""Full-jitter backoff and the retry budget."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from aicp.config import ReliabilitySettings
from aicp.errors import UpstreamStatusError
from aicp.plane.exchange import Exchange
from aicp.plane.execute import Execute
from aicp.protocol.jsonutil import Json
from aicp.providers.base import Call, Provider, Reply
from aicp.providers.mock import MockProvider
from aicp.reliability.breaker import HALF_OPEN, Breaker
from aicp.reliability.retry import RetryBudget, backoff
from aicp.routing.router import Router
from tests.helpers import make_settings


def test_backoff_is_full_jitter_within_the_exponential_bound() -> None:
    rng = random.Random(7)
    for attempt, bound in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8)]:
        draws = [backoff(attempt, 0.1, 10.0, rng) for _ in range(2000)]
        assert min(draws) >= 0.0
        assert max(draws) <= bound
        # Full jitter: spread over the whole range, not bunched at the top.
        assert min(draws) < bound * 0.05
        assert max(draws) > bound * 0.95
        assert sum(draws) / len(draws) == pytest.approx(bound / 2, rel=0.1)


def test_backoff_never_exceeds_the_cap() -> None:
    rng = random.Random(1)
    assert max(backoff(30, 0.25, 2.0, rng) for _ in range(500)) <= 2.0


def test_backoff_with_a_seeded_rng_repeats() -> None:
    a = [backoff(n, 0.1, 1.0, random.Random(3)) for n in range(4)]
    b = [backoff(n, 0.1, 1.0, random.Random(3)) for n in range(4)]
    assert a == b


def budget(percent: float, floor: int) -> RetryBudget:
    return RetryBudget(ReliabilitySettings(retry_budget_percent=percent, retry_budget_min=floor))


def test_retry_budget_floor_applies_with_few_active_requests() -> None:
    b = budget(20, 3)
    b.active = 2
    assert b.limit() == 3
    assert [b.try_acquire() for _ in range(4)] == [True, True, True, False]
    b.release()
    assert b.try_acquire()
    assert not b.try_acquire()


def test_retry_budget_grows_with_active_requests() -> None:
    b = budget(20, 3)
    b.active = 100
    assert b.limit() == 20
    granted = sum(b.try_acquire() for _ in range(50))
    assert granted == 20
    assert b.retrying == 20


def test_retry_budget_of_zero_allows_no_retry() -> None:
    b = budget(0, 0)
    b.active = 1000
    assert not b.try_acquire()
    assert b.retrying == 0


# --- execute: the budget and the breakers together ------------------------------------


def mock_router(failure_rate: float, **reliability: Any) -> Router:
    s = make_settings(
        {
            "providers": {
                "bad": {"type": "mock", "options": {"failure_rate": failure_rate}},
                "good": {"type": "mock", "options": {"latency_ms": 200}},
            },
            "models": [
                {
                    "name": "x",
                    "deployments": [{"provider": "bad", "model": "m"}],
                    "fallbacks": ["good/m"],
                }
            ],
            "reliability": {"backoff_base_s": 0.0, **reliability},
        }
    )
    providers: dict[str, Provider] = {
        name: MockProvider(name, ps, None) for name, ps in s.providers.items()
    }
    return Router(s, providers, {"bad": ["m"], "good": ["m"]})


def exchange(r: Router, name: str = "x") -> Exchange:
    ex = Exchange("t", "openai", "chat", {"model": name, "messages": []}, {})
    ex.route = r.resolve(name)
    return ex


def half_open(r: Router, key: str) -> Breaker:
    breaker = r.health()[key].breaker
    breaker._open()
    breaker.opened_at -= breaker.settings.open_s + 1
    assert breaker.available()
    return breaker


def test_an_exhausted_budget_does_not_leak_a_half_open_probe() -> None:
    r = mock_router(
        1.0,
        max_retries=0,
        retry_budget_percent=0,
        retry_budget_min=0,
        breaker={"half_open_probes": 1},
    )
    execute = Execute(r.settings.reliability, RetryBudget(r.settings.reliability))
    ex = exchange(r)
    breaker = half_open(r, "good/m")
    with pytest.raises(UpstreamStatusError):
        asyncio.run(execute(ex))
    assert [a.deployment for a in ex.attempts] == ["bad/m"]
    # The fallback was never tried, so its one probe must still be free.
    assert breaker.allow()


def test_a_cancelled_attempt_frees_its_probe_and_counts_as_no_failure() -> None:
    r = mock_router(0.0, breaker={"half_open_probes": 1})
    execute = Execute(r.settings.reliability, RetryBudget(r.settings.reliability))
    breaker = half_open(r, "good/m")
    ex = exchange(r, "good/m")

    async def cancel_midway() -> None:
        task = asyncio.create_task(execute(ex))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert breaker.state == HALF_OPEN
    assert breaker.allow()
    assert execute.budget.active == 0 and execute.budget.retrying == 0


class CanonicalRecorder(MockProvider):
    """A mock that notes the canonical body each attempt was given."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: list[Json] = []

    async def complete(self, call: Call) -> Reply:
        self.seen.append(call.openai())
        return await super().complete(call)


def test_retries_and_fallbacks_translate_the_body_once() -> None:
    r = mock_router(1.0, max_retries=1)
    providers = {n: CanonicalRecorder(n, p.settings, None) for n, p in r.providers.items()}
    r = Router(r.settings, providers, r.catalog)
    execute = Execute(r.settings.reliability, RetryBudget(r.settings.reliability))
    body = {"model": "x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    ex = Exchange("t", "anthropic", "chat", body, {})
    ex.route = r.resolve("x")
    asyncio.run(execute(ex))
    assert [a.deployment for a in ex.attempts] == ["bad/m", "bad/m", "good/m"]
    seen = providers["bad"].seen + providers["good"].seen
    assert len(seen) == 3
    # One translation (Anthropic -> canonical) served the retry and the fallback.
    assert all(b is seen[0] for b in seen)
    assert seen[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert ex.reply is not None and ex.reply.data["model"] == "m"
