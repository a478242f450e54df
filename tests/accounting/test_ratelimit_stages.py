"""The limits and meter stages: which limits apply, the 429, the headers, the chain."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aicp.accounting.ratelimit import RateLimiter
from aicp.accounting.ratelimit_stages import (
    LimitsStage,
    MeterStage,
    deployment_limits,
    duration,
    estimate_cost,
    limits_from_metadata,
)
from aicp.config import ProviderSettings
from aicp.errors import RateLimited, UpstreamUnavailable
from aicp.plane.exchange import Exchange, Principal
from aicp.protocol.tokens import estimate_request_tokens
from aicp.providers.base import Usage
from aicp.providers.mock import MockProvider
from aicp.routing.router import Router
from tests.accounting.test_ratelimit import Clock
from tests.backends import Counters
from tests.helpers import make_settings

PROMPT = [{"role": "user", "content": "x" * 400}]
#: The prompt's estimate: a little over 100 tokens (the JSON around the text counts too).
P = estimate_request_tokens({"messages": PROMPT})


def exchange(principal: Principal | None = None, **body: Any) -> Exchange:
    body = {"model": "m", "messages": PROMPT, **body}
    ex = Exchange("r", "openai", "chat", body, {})
    ex.principal = principal or Principal()
    return ex


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(counters: Counters, clock: Clock) -> RateLimiter:
    return RateLimiter(counters.redis, clock)


async def admit(stage: LimitsStage, ex: Exchange) -> RateLimited | None:
    try:
        await stage(ex)
    except RateLimited as err:
        return err
    return None


async def test_no_limit_means_no_headers_and_no_store_call() -> None:
    class Exploding(RateLimiter):
        async def acquire(self, *a: Any, **k: Any) -> Any:
            raise AssertionError("the store was asked")

    ex = exchange(Principal(key_id="k", user_id="u", team_id="t"))
    await LimitsStage(Exploding(None))(ex)
    assert ex.response_headers == {} and ex.token_hold is None


async def test_key_rpm_refusal_names_the_key_and_says_when(limiter: RateLimiter) -> None:
    stage = LimitsStage(limiter)
    key = Principal(key_id="key_1", display="sk-aicp-Ab...9Q", rpm=2)
    assert await admit(stage, first := exchange(key)) is None
    assert first.response_headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
    }
    assert await admit(stage, exchange(key)) is None
    ex = exchange(key)
    err = await admit(stage, ex)
    assert err is not None and err.status == 429 and err.code == "rate_limit_exceeded"
    assert "key sk-aicp-Ab...9Q" in err.message and "(RPM): limit 2" in err.message
    assert err.headers["retry-after"] == "30" and err.headers["retry-after-ms"] == "30000"
    assert ex.response_headers["x-ratelimit-remaining-requests"] == "0"
    assert ex.response_headers["x-ratelimit-reset-requests"] == "1m0s"


@pytest.mark.parametrize(
    ("principal", "named"),
    [
        (Principal(key_id="k", user_id="u1", user_rpm=1), "user u1"),
        (Principal(key_id="k", team_id="t1", team_tpm=150), "team t1"),
    ],
)
async def test_user_and_team_limits_apply_and_are_named(
    limiter: RateLimiter, principal: Principal, named: str
) -> None:
    stage = LimitsStage(limiter)
    assert await admit(stage, exchange(principal, max_tokens=10)) is None
    err = await admit(stage, exchange(principal, max_tokens=10))
    assert err is not None and named in err.message


async def test_headers_show_the_tightest_limit(limiter: RateLimiter) -> None:
    p = Principal(key_id="k", rpm=100, tpm=10_000, team_id="t", team_rpm=3, team_tpm=50_000)
    ex = exchange(p, max_tokens=1000 - P)
    await LimitsStage(limiter)(ex)
    assert ex.response_headers == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "20s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9000",
        "x-ratelimit-reset-tokens": "6s",
    }


async def test_tokens_are_estimated_then_corrected_by_the_meter(limiter: RateLimiter) -> None:
    p = Principal(key_id="k", tpm=1000)
    limits, meter = LimitsStage(limiter), MeterStage(limiter)
    ex = exchange(p, max_tokens=600 - P)
    await limits(ex)
    assert ex.token_hold is not None and ex.token_hold.estimate == 600
    # Another 600 does not fit now ...
    assert await admit(limits, exchange(p, max_tokens=600 - P)) is not None
    ex.usage = Usage(prompt_tokens=90, completion_tokens=10)
    await meter(ex)
    assert ex.token_hold is None
    # ... but once the first is known to have used 100, it does.
    assert await admit(limits, exchange(p, max_tokens=600 - P)) is None


async def test_a_failed_request_gives_its_tokens_back(limiter: RateLimiter) -> None:
    p = Principal(key_id="k", tpm=1000)
    limits, meter = LimitsStage(limiter), MeterStage(limiter)
    for _ in range(3):
        ex = exchange(p, max_tokens=900 - P)
        await limits(ex)
        ex.error = UpstreamUnavailable("down")
        await meter(ex)


def test_the_estimate_is_prompt_plus_output_cap() -> None:
    assert 100 < P < 120
    assert estimate_cost(exchange(max_tokens=50)) == P + 50
    assert estimate_cost(exchange(max_completion_tokens=7)) == P + 7
    assert estimate_cost(exchange()) == P
    emb = Exchange("r", "openai", "embeddings", {"model": "e", "input": "y" * 40}, {})
    assert estimate_cost(emb) == 10


def test_user_and_team_limits_come_from_metadata() -> None:
    assert limits_from_metadata({"rpm": 10, "tpm": 5000, "other": 1}) == (10, 5000)
    assert limits_from_metadata({"rpm": "10", "tpm": -1}) == (None, None)
    assert limits_from_metadata({"rpm": True}) == (None, None)
    assert limits_from_metadata(None) == (None, None)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (17, "17ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (360_000, "6m0s"),
        (3_723_400, "1h2m3.4s"),
    ],
)
def test_durations_are_written_like_openai(ms: int, text: str) -> None:
    assert duration(ms) == text


# --- deployments -------------------------------------------------------------------------


def router(*deployments: dict[str, Any]) -> Router:
    catalog = {"a": ["m1"], "b": ["m2"], "c": ["m3"]}
    settings = make_settings(
        {
            "providers": {n: {"type": "mock"} for n in catalog},
            "models": [{"name": "x", "deployments": list(deployments)}],
        }
    )
    providers = {n: MockProvider(n, ProviderSettings(type="mock"), None) for n in catalog}
    return Router(settings, providers, catalog, random.Random(0))


def dep(provider: str, model: str, priority: int, **kw: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, "priority": priority, **kw}


async def chain_after_limits(stage: LimitsStage, r: Router) -> list[str] | RateLimited:
    ex = exchange(model="x")
    ex.body["model"] = "x"
    ex.route = r.resolve("x")
    err = await admit(stage, ex)
    return err if err is not None else ex.route.describe()


async def test_a_deployment_over_its_rpm_is_skipped(limiter: RateLimiter) -> None:
    r = router(dep("a", "m1", 0, rpm=2), dep("b", "m2", 1, rpm=1))
    stage = LimitsStage(limiter, deployment_limits(r.settings))
    assert await chain_after_limits(stage, r) == ["a/m1", "b/m2"]
    assert await chain_after_limits(stage, r) == ["a/m1", "b/m2"]
    assert await chain_after_limits(stage, r) == ["b/m2"]
    err = await chain_after_limits(stage, r)
    assert isinstance(err, RateLimited)
    assert "deployment a/m1 of model 'x'" in err.message or "deployment b/m2" in err.message
    assert err.headers["retry-after"] == "30"  # a/m1 has room again first


async def test_an_unlimited_deployment_after_full_ones_takes_the_request(
    limiter: RateLimiter,
) -> None:
    r = router(dep("a", "m1", 0, tpm=100), dep("c", "m3", 1))
    stage = LimitsStage(limiter, deployment_limits(r.settings))
    assert await chain_after_limits(stage, r) == ["a/m1", "c/m3"]  # 100 tokens: all of it
    assert await chain_after_limits(stage, r) == ["c/m3"]
    assert await chain_after_limits(stage, r) == ["c/m3"]


def test_a_deployment_named_twice_keeps_the_tighter_limits() -> None:
    settings = make_settings(
        {
            "providers": {"a": {"type": "mock"}},
            "models": [
                {"name": "x", "deployments": [{"provider": "a", "model": "m", "rpm": 5}]},
                {"name": "y", "deployments": [{"provider": "a", "model": "m", "rpm": 9, "tpm": 7}]},
            ],
        }
    )
    limits = deployment_limits(settings)["a/m"]
    assert [(lim.unit, lim.per_minute) for lim in limits] == [("requests", 5), ("tokens", 7)]
