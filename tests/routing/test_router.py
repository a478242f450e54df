"""Name resolution, fallbacks and the order each strategy tries deployments in."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from aicp.config import ProviderSettings, Settings
from aicp.errors import AmbiguousModel, ConfigError, ModelNotFound, UpstreamUnavailable
from aicp.plane.exchange import Exchange
from aicp.plane.execute import Execute
from aicp.providers.base import Provider
from aicp.providers.mock import MockProvider
from aicp.reliability.retry import RetryBudget
from aicp.routing.router import Router
from tests.helpers import make_settings

CATALOG = {"a": ["m1", "shared"], "b": ["m2", "shared"], "c": ["m3"]}


def providers() -> dict[str, Provider]:
    return {n: MockProvider(n, ProviderSettings(type="mock"), None) for n in CATALOG}


def settings(**data: Any) -> Settings:
    base: dict[str, Any] = {"providers": {n: {"type": "mock"} for n in CATALOG}}
    return make_settings({**base, **data})


def router(seed: int = 0, **data: Any) -> Router:
    return Router(settings(**data), providers(), CATALOG, random.Random(seed))


def dep(provider: str, model: str, **kw: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **kw}


def keys(r: Router, name: str) -> list[str]:
    return r.resolve(name).describe()


# --- resolution ----------------------------------------------------------------


def test_resolution_order_model_alias_group_provider_model_bare_name() -> None:
    r = router(
        models=[
            {"name": "smart", "deployments": [dep("a", "m1")]},
            {"name": "fast", "deployments": [dep("b", "m2")]},
            # A configured model wins over a bare name of the same spelling.
            {"name": "m3", "deployments": [dep("a", "m1")]},
        ],
        aliases={"default": "smart", "latest": "default"},
        groups={"pool": {"models": ["smart", "fast"]}},
    )
    assert keys(r, "smart") == ["a/m1"]
    assert keys(r, "default") == ["a/m1"]
    assert keys(r, "latest") == ["a/m1"]  # alias of an alias
    assert sorted(keys(r, "pool")) == ["a/m1", "b/m2"]
    assert keys(r, "c/m3") == ["c/m3"]
    assert keys(r, "b/anything-new") == ["b/anything-new"]  # provider/model need not be listed
    assert keys(r, "m2") == ["b/m2"]  # bare name that exactly one provider lists
    assert keys(r, "m3") == ["a/m1"]


def test_an_alias_wins_over_a_bare_name() -> None:
    r = router(aliases={"m2": "c/m3"})
    assert keys(r, "m2") == ["c/m3"]


def test_ambiguous_bare_name_lists_the_options() -> None:
    r = router()
    with pytest.raises(AmbiguousModel) as info:
        r.resolve("shared")
    assert info.value.status == 400
    assert "a/shared" in info.value.message and "b/shared" in info.value.message
    assert keys(r, "a/shared") == ["a/shared"]


@pytest.mark.parametrize("name", ["nope", "zz/m1", "a/", ""])
def test_unknown_name_is_model_not_found(name: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        router().resolve(name)
    assert info.value.status == 404


@pytest.mark.parametrize(
    "aliases",
    [{"x": "x"}, {"x": "y", "y": "x"}, {"x": "y", "y": "z", "z": "y"}],
)
def test_alias_cycles_are_rejected_at_start_up(aliases: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="alias cycle"):
        router(aliases=aliases)


def test_alias_to_an_unknown_model_is_a_config_error_at_start_up() -> None:
    with pytest.raises(ConfigError, match="nope"):
        router(aliases={"x": "nope"})


def test_a_group_may_not_take_the_name_of_a_model() -> None:
    with pytest.raises(ConfigError, match="group 'x'"):
        router(
            models=[{"name": "x", "deployments": [dep("a", "m1")]}],
            groups={"x": {"models": ["c/m3"]}},
        )


def test_a_group_of_an_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        router(groups={"g": {"models": ["c/m3", "nope"]}})


def test_unknown_provider_in_a_deployment_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="zz"):
        router(models=[{"name": "x", "deployments": [dep("zz", "m1")]}])


def test_fallbacks_are_appended_in_order_without_duplicates() -> None:
    r = router(
        models=[
            {
                "name": "main",
                "deployments": [dep("a", "m1")],
                "fallbacks": ["second", "third", "a/m1", "second"],
            },
            {"name": "second", "deployments": [dep("b", "m2"), dep("a", "m1", priority=1)]},
            {"name": "third", "deployments": [dep("c", "m3")]},
        ],
    )
    assert keys(r, "main") == ["a/m1", "b/m2", "c/m3"]


def test_forced_route_is_one_deployment_without_fallbacks() -> None:
    r = router(models=[{"name": "main", "deployments": [dep("a", "m1")], "fallbacks": ["c/m3"]}])
    route = r.forced("b/m2")
    assert route.forced and route.describe() == ["b/m2"]


# --- strategies -----------------------------------------------------------------


def firsts(r: Router, name: str, n: int = 2000) -> Counter[str]:
    return Counter(keys(r, name)[0] for _ in range(n))


def test_priority_orders_by_priority_then_weight() -> None:
    r = router(
        models=[
            {
                "name": "p",
                "deployments": [
                    dep("c", "m3", priority=2),
                    dep("b", "m2", priority=1, weight=1),
                    dep("a", "m1", priority=1, weight=9),
                ],
            }
        ]
    )
    counts = Counter(tuple(keys(r, "p")) for _ in range(2000))
    assert set(counts) == {("a/m1", "b/m2", "c/m3"), ("b/m2", "a/m1", "c/m3")}
    heavy = counts[("a/m1", "b/m2", "c/m3")] / 2000
    assert 0.85 < heavy < 0.95  # ties go to the heavier deployment 9 times in 10


def test_weighted_distribution_is_roughly_proportional() -> None:
    r = router(
        models=[
            {
                "name": "w",
                "strategy": "weighted",
                "deployments": [
                    dep("a", "m1", weight=6),
                    dep("b", "m2", weight=3),
                    dep("c", "m3", weight=1),
                    dep("a", "shared", weight=0),
                ],
            }
        ]
    )
    n = 10_000
    counts = firsts(r, "w", n)
    assert counts["a/m1"] / n == pytest.approx(0.6, abs=0.03)
    assert counts["b/m2"] / n == pytest.approx(0.3, abs=0.03)
    assert counts["c/m3"] / n == pytest.approx(0.1, abs=0.02)
    assert counts["a/shared"] == 0
    assert keys(r, "w")[-1] == "a/shared"  # weight 0: last resort only


def test_least_latency_explores_unmeasured_then_prefers_the_fastest_ewma() -> None:
    r = router(
        models=[
            {
                "name": "l",
                "strategy": "least_latency",
                "deployments": [dep("a", "m1"), dep("b", "m2"), dep("c", "m3")],
            }
        ]
    )
    a, b, c = (r.health_for(p, m) for p, m in [("a", "m1"), ("b", "m2"), ("c", "m3")])
    for h, ms in [(a, 300.0), (b, 50.0)]:
        h.start()
        h.finish(True, ms)
    assert keys(r, "l") == ["c/m3", "b/m2", "a/m1"]  # c was never measured: try it first
    c.start()
    c.finish(True, 120.0)
    assert keys(r, "l") == ["b/m2", "c/m3", "a/m1"]
    for _ in range(10):  # b slows down: its EWMA follows
        b.start()
        b.finish(True, 1000.0)
    assert keys(r, "l") == ["c/m3", "a/m1", "b/m2"]


def test_lowest_cost_orders_by_price() -> None:
    r = router(
        models=[
            {
                "name": "cheap",
                "strategy": "lowest_cost",
                "deployments": [
                    dep("a", "m1", input_cost_per_mtok=5, output_cost_per_mtok=15),
                    dep("b", "m2", input_cost_per_mtok=0.1, output_cost_per_mtok=0.4),
                    dep("c", "m3", input_cost_per_mtok=1, output_cost_per_mtok=2),
                ],
            }
        ]
    )
    for _ in range(20):
        assert keys(r, "cheap") == ["b/m2", "c/m3", "a/m1"]


# --- limits (enforced by execute over the router's order) ---------------------------


def run_chat(r: Router, name: str) -> Exchange:
    ex = Exchange("t", "openai", "chat", {"model": name, "messages": []}, {})
    ex.route = r.resolve(name)
    execute = Execute(r.settings.reliability, RetryBudget(r.settings.reliability))
    asyncio.run(execute(ex))
    return ex


def test_a_deployment_at_max_concurrency_is_skipped() -> None:
    r = router(
        models=[
            {
                "name": "x",
                "deployments": [dep("a", "m1", max_concurrency=1), dep("b", "m2", priority=1)],
            }
        ]
    )
    busy = r.health_for("a", "m1")
    busy.start()  # one request already in flight
    ex = run_chat(r, "x")
    assert [a.deployment for a in ex.attempts] == ["b/m2"]
    busy.finish(True, 1.0)
    ex = run_chat(r, "x")
    assert [a.deployment for a in ex.attempts] == ["a/m1"]


# A deployment over its rpm is skipped by the limits stage, not by execute: see
# tests/accounting/test_ratelimit_stages.py (test_a_deployment_over_its_rpm_is_skipped).


def test_every_deployment_at_its_limits_is_a_503() -> None:
    r = router(models=[{"name": "x", "deployments": [dep("a", "m1", max_concurrency=1)]}])
    r.health_for("a", "m1").start()
    with pytest.raises(UpstreamUnavailable) as info:
        run_chat(r, "x")
    assert info.value.status == 503
