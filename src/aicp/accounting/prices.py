"""Prices per deployment: USD per million tokens, from genai-prices or config.

genai-prices ships its price table inside the package; we read only that
bundled snapshot (never `UpdatePrices`, which fetches), once per deployment,
into a small `Rates` record, so pricing a request is a few multiplications
instead of the package's ~70 µs calculation. A deployment's
`input_cost_per_mtok` / `output_cost_per_mtok`, when non-zero, win.

A rate in USD per million tokens is also micro-dollars per token, which is
why costs here are computed in micro-dollars (the ledger's unit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aicp.config import Settings
from aicp.providers.base import Usage

if TYPE_CHECKING:
    from aicp.routing.router import Deployment

log = logging.getLogger("aicp.prices")

#: Our provider types whose genai-prices provider id differs from the type name.
_PROVIDER_IDS = {"gemini": "google", "vertex": "google", "bedrock": "aws"}

#: Tiered price: (base, ((start, price), ...)); crossing a tier reprices *all* tokens.
Tiered = tuple[float, tuple[tuple[int, float], ...]]


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens (= micro-dollars per token) for one deployment."""

    input: Tiered = (0.0, ())
    output: Tiered = (0.0, ())
    cache_read: Tiered = (0.0, ())
    cache_write: Tiered = (0.0, ())
    #: Where the figures came from: "config", "genai-prices", "local" or "unknown".
    source: str = "unknown"

    def cost_micros(self, usage: Usage) -> float:
        """The cost of `usage` in micro-dollars (not rounded)."""
        prompt = usage.prompt_tokens
        cached = min(usage.cached_tokens, prompt)
        written = min(usage.cache_creation_tokens, prompt - cached)
        plain = prompt - cached - written
        return (
            plain * _at(self.input, prompt)
            + cached * _at(self.cache_read, prompt)
            + written * _at(self.cache_write, prompt)
            + usage.completion_tokens * _at(self.output, prompt)
        )


FREE = Rates(source="local")
UNKNOWN = Rates(source="unknown")


def _at(rate: Tiered, prompt_tokens: int) -> float:
    base, tiers = rate
    for start, price in reversed(tiers):
        if prompt_tokens > start:
            return price
    return base


class Prices:
    """Rates per deployment, resolved once and cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rates: dict[str, Rates] = {}
        self._overrides: dict[str, tuple[float, float]] = {}
        self._warned: set[str] = set()
        for model in settings.models:
            for d in model.deployments:
                key = f"{d.provider}/{d.model}"
                old_in, old_out = self._overrides.get(key, (0.0, 0.0))
                self._overrides[key] = (
                    old_in or d.input_cost_per_mtok,
                    old_out or d.output_cost_per_mtok,
                )

    def warm(self, deployments: Iterable[Deployment], any_priced_provider: bool) -> None:
        """Resolve the configured deployments now: loading the price table takes
        a noticeable fraction of a second, which must not land on a first request."""
        if any_priced_provider:
            from genai_prices.data_snapshot import get_snapshot

            get_snapshot()
        for dep in deployments:
            self.rates(dep)

    def rates(self, dep: Deployment) -> Rates:
        rates = self._rates.get(dep.key)
        if rates is None:
            rates = self._resolve(dep.provider.name, dep.model, dep.provider.local)
            self._rates[dep.key] = rates
        return rates

    def cost_micros(self, dep: Deployment, usage: Usage) -> int:
        return round(self.rates(dep).cost_micros(usage))

    def _resolve(self, provider: str, model: str, local: bool) -> Rates:
        ps = self.settings.providers.get(provider)
        kind = ps.type if ps is not None else provider
        found = None if local else lookup(kind, model)
        over_in, over_out = self._overrides.get(f"{provider}/{model}", (0.0, 0.0))
        if found is None:
            if over_in or over_out:
                return Rates((over_in, ()), (over_out, ()), (over_in, ()), (over_in, ()), "config")
            if local:
                return FREE
            if model not in self._warned:
                self._warned.add(model)
                log.warning(
                    "no price known for model %r (provider %s): its requests cost 0; "
                    "set input_cost_per_mtok/output_cost_per_mtok on its deployment",
                    model,
                    provider,
                    extra={"event": "price.unknown", "model": model, "provider": provider},
                )
            return UNKNOWN
        if not (over_in or over_out):
            return found
        return _override(found, over_in, over_out)


def _override(found: Rates, over_in: float, over_out: float) -> Rates:
    """Config prices win; cache prices keep the model's discount relative to input."""
    output = (over_out, ()) if over_out else found.output
    if not over_in:
        return Rates(found.input, output, found.cache_read, found.cache_write, "config")
    base_in = found.input[0]

    def scaled(rate: Tiered) -> Tiered:
        ratio = rate[0] / base_in if base_in else 1.0
        return (over_in * ratio, ())

    return Rates(
        (over_in, ()), output, scaled(found.cache_read), scaled(found.cache_write), "config"
    )


def lookup(provider_type: str, model: str, when: datetime | None = None) -> Rates | None:
    """The genai-prices rates of `model` at `provider_type`, or None when it has none."""
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    provider_id = _PROVIDER_IDS.get(provider_type, provider_type)
    try:
        _, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        try:
            # Our type may be unknown to genai-prices (a preset); match on the model alone.
            _, info = snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            return None
    price = info.get_prices(when or datetime.now(UTC))
    inp = _tiered(getattr(price, "input_mtok", None))
    if inp is None:
        return None
    out = _tiered(getattr(price, "output_mtok", None)) or (0.0, ())
    read = _tiered(getattr(price, "cache_read_mtok", None)) or inp
    write = _tiered(getattr(price, "cache_write_mtok", None)) or inp
    return Rates(inp, out, read, write, "genai-prices")


def _tiered(value: Any) -> Tiered | None:
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return (float(value), ())
    tiers = tuple((int(t.start), float(t.price)) for t in getattr(value, "tiers", ()))
    return (float(value.base), tiers)
