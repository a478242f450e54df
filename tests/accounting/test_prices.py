"""Prices: genai-prices offline, config overrides, cached-token discounts, unknown = 0."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from aicp.accounting.prices import Prices, lookup
from aicp.providers.base import Usage
from aicp.routing.router import Router
from tests.helpers import make_settings


def prices_and_router(models: list[dict[str, Any]] | None = None) -> tuple[Prices, Router]:
    settings = make_settings(
        {
            "providers": {
                "openai": {"type": "openai", "api_key": "sk-x"},
                "local": {"type": "mock"},
            },
            "models": models or [],
        }
    )
    providers = {"openai": _Named("openai", False), "local": _Named("local", True)}
    return Prices(settings), Router(settings, providers, {})  # type: ignore[arg-type]


class _Named:
    def __init__(self, name: str, local: bool) -> None:
        self.name = name
        self.local = local


def test_known_model_is_priced_from_genai_prices() -> None:
    prices, router = prices_and_router()
    dep = router.resolve("openai/gpt-4o-mini").chain[0]
    rates = prices.rates(dep)
    assert rates.source == "genai-prices"
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    assert prices.cost_micros(dep, Usage(1_000_000, 1_000_000)) == 750_000


def test_cached_tokens_cost_what_the_model_says() -> None:
    prices, router = prices_and_router()
    dep = router.resolve("openai/gpt-4o-mini").chain[0]
    # Half the prompt read from the cache at $0.075: 0.075 + 0.0375 = $0.1125 for the input.
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=500_000)
    assert prices.cost_micros(dep, usage) == 112_500


def test_config_override_wins_and_keeps_the_cache_discount() -> None:
    models = [
        {
            "name": "mini",
            "deployments": [
                {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "input_cost_per_mtok": 1.0,
                    "output_cost_per_mtok": 2.0,
                }
            ],
        }
    ]
    prices, router = prices_and_router(models)
    dep = router.resolve("mini").chain[0]
    assert prices.rates(dep).source == "config"
    assert prices.cost_micros(dep, Usage(1_000_000, 1_000_000)) == 3_000_000
    # The model's cache read is half its input price; the override keeps that ratio.
    assert prices.cost_micros(dep, Usage(1_000_000, 0, cached_tokens=1_000_000)) == 500_000


def test_an_override_on_one_side_keeps_the_other_from_genai_prices() -> None:
    models = [
        {
            "name": "mini",
            "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini", "output_cost_per_mtok": 1.0}
            ],
        }
    ]
    prices, router = prices_and_router(models)
    dep = router.resolve("mini").chain[0]
    assert prices.cost_micros(dep, Usage(1_000_000, 1_000_000)) == 150_000 + 1_000_000


def test_unknown_model_costs_zero_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    prices, router = prices_and_router()
    dep = router.resolve("openai/no-such-model-xyz").chain[0]
    with caplog.at_level(logging.WARNING, logger="aicp.prices"):
        assert prices.cost_micros(dep, Usage(1000, 1000)) == 0
        assert prices.cost_micros(dep, Usage(1000, 1000)) == 0
        other = router.resolve("openai/no-such-model-xyz").chain[0]
        prices._rates.clear()  # resolved again: still one warning for the model
        assert prices.cost_micros(other, Usage(1, 1)) == 0
    warnings = [r for r in caplog.records if "no-such-model-xyz" in r.getMessage()]
    assert len(warnings) == 1


def test_local_providers_are_free_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    prices, router = prices_and_router()
    dep = router.resolve("local/gpt-4o-mini").chain[0]
    with caplog.at_level(logging.WARNING, logger="aicp.prices"):
        assert prices.cost_micros(dep, Usage(1000, 1000)) == 0
    assert prices.rates(dep).source == "local"
    assert not caplog.records


def test_tiered_prices_switch_for_the_whole_request() -> None:
    rates = lookup("gemini", "gemini-2.5-pro")
    assert rates is not None
    small = rates.cost_micros(Usage(prompt_tokens=200_000))
    large = rates.cost_micros(Usage(prompt_tokens=200_001))
    assert small == pytest.approx(200_000 * 1.25)
    assert large == pytest.approx(200_001 * 2.5)


def test_genai_prices_never_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    import genai_prices.update_prices as up

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("genai-prices tried to update its prices")

    monkeypatch.setattr(up.UpdatePrices, "start", refuse, raising=False)
    monkeypatch.setattr(up.UpdatePrices, "__enter__", refuse, raising=False)
    assert lookup("openai", "gpt-4o-mini") is not None
