"""The budget stages: reserve the maximum cost before the call, settle after.

The reservation is the request's worst case: its prompt (estimated from the
body) at the input price plus `max_tokens` (or a default) at the output
price, on the dearest deployment of its route. Settling replaces it with the
actual cost from the usage the upstream reported; a stream that ended early
without usage is billed from what was streamed. A request that failed with
no usage releases its reservation whole.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aicp.accounting.counters import Hold
from aicp.accounting.prices import Prices
from aicp.accounting.spend import SpendRow
from aicp.accounting.windows import iso
from aicp.errors import BudgetExceeded
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.protocol.tokens import estimate_request_tokens, estimate_tokens
from aicp.providers.base import Usage
from aicp.storage.schema import MICROS

if TYPE_CHECKING:
    from aicp.accounting.budgets import Budget, BudgetService

log = logging.getLogger("aicp.budgets")

#: Output tokens reserved when the request sets no max_tokens.
DEFAULT_MAX_OUTPUT = 4096

#: Stream bytes per completion token, for a stream that ended without usage: a
#: chunk carries about one token inside ~100-200 bytes of JSON and SSE framing
#: (measured on our encoders; see docs/decisions.md). Errs towards billing less.
STREAM_BYTES_PER_TOKEN = {"openai": 150, "anthropic": 110, "openai-responses": 200}


@dataclass(slots=True)
class Reservation:
    budgets: list[Budget]
    holds: list[Hold]
    #: Micro-dollars held against every budget.
    amount: int
    prompt_tokens: int
    max_output: int


def max_output(ex: Exchange) -> int:
    if ex.operation != "chat":
        return 0
    body = ex.body
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value * choices
    return DEFAULT_MAX_OUTPUT * choices


def prompt_estimate(ex: Exchange) -> int:
    if ex.operation == "embeddings":
        return estimate_tokens(ex.body.get("input") or "")
    return estimate_request_tokens(ex.body)


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / MICROS


def _money(micros: int | None) -> str:
    if micros is None:
        return "none"
    text = f"{micros / MICROS:,.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


class BudgetStage:
    """Request stage, after route: reserve the request's maximum cost, all budgets or none."""

    name = "budget"

    def __init__(
        self, budgets: BudgetService, prices: Prices, events: EventBus | None = None
    ) -> None:
        self.budgets = budgets
        self.prices = prices
        self.events = events or EventBus()

    async def __call__(self, ex: Exchange) -> None:
        sv = self.budgets
        if not sv.by_scope:
            return
        found = sv.applicable(ex.principal)
        if not found or ex.operation == "count_tokens" or ex.mode == "simulate":
            return
        if ex.cached is not None:  # answered from the cache: nothing to spend
            return
        now = sv.clock()
        holds = [sv.hold(b, now) for b in found]
        await sv.prime(found, holds)
        prompt, output = prompt_estimate(ex), max_output(ex)
        amount = self.estimate(ex, prompt, output)
        outcome = await sv.counters.reserve(holds, amount)
        if outcome.refused is not None:
            i = outcome.refused
            spent, reserved = outcome.counters[i]
            raise self._exceeded(ex, found[i], holds[i], spent, reserved, amount, now)
        ex.reservation = Reservation(found, holds, amount, prompt, output)
        ex.trace.append(
            ("budget", {"reserved_usd": amount / MICROS, "budgets": [b.id for b in found]})
        )

    def estimate(self, ex: Exchange, prompt: int, output: int) -> int:
        """Micro-dollars: the dearest deployment of the route, at the request's maximum."""
        usage = Usage(prompt_tokens=prompt, completion_tokens=output)
        chain = ex.route.chain if ex.route is not None else []
        return max((self.prices.cost_micros(d, usage) for d in chain), default=0)

    def _exceeded(
        self,
        ex: Exchange,
        b: Budget,
        hold: Hold,
        spent: int,
        reserved: int,
        amount: int,
        now: float,
    ) -> BudgetExceeded:
        if hold.ends is None:
            resets, headers = "it never resets (a total budget)", {}
        else:
            wait = max(1, math.ceil(hold.ends - now))
            resets = f"it resets at {iso(hold.ends)} (in {wait} s)"
            headers = {"retry-after": str(wait)}
        in_flight = f" and {_money(reserved)} held by requests in flight" if reserved else ""
        message = (
            f"budget exceeded: the {b.period} budget of {b.scope} {b.scope_id!r} is "
            f"{_money(b.hard_limit_micros)}; {_money(spent)} spent in this window{in_flight}; "
            f"this request may cost up to {_money(amount)}; {resets}"
        )
        log.info(
            "budget %s refused request: %s",
            b.id,
            message,
            extra={"event": "budget.exceeded", "budget_id": b.id, "scope": b.scope},
        )
        if self.events.wants("budget.exceeded"):
            data = {
                "budget_id": b.id,
                "scope": b.scope,
                "scope_id": b.scope_id,
                "period": b.period,
                "hard_limit_usd": _usd(b.hard_limit_micros),
                "spent_usd": spent / MICROS,
                "reserved_usd": reserved / MICROS,
                "requested_usd": amount / MICROS,
                "resets_at": iso(hold.ends),
            }
            emit_for(self.events, "budget.exceeded", ex, data)
        return BudgetExceeded(message, headers=headers)


class SettleStage:
    """Response stage: the actual cost, the spend ledger, the reservation settled."""

    name = "settle"

    def __init__(
        self, budgets: BudgetService, prices: Prices, events: EventBus | None = None
    ) -> None:
        self.budgets = budgets
        self.prices = prices
        self.events = events or EventBus()

    async def __call__(self, ex: Exchange) -> None:
        cost = self._bill(ex)
        res = ex.reservation
        if res is None:
            return
        ex.reservation = None
        after = await self.budgets.counters.settle(res.holds, res.amount, cost)
        for b, hold, (spent, _) in zip(res.budgets, res.holds, after, strict=True):
            soft = b.soft_limit_micros
            if soft is not None and spent >= soft:
                self._soft_alert(ex, b, hold, spent)

    def _bill(self, ex: Exchange) -> int:
        """The request's cost in micro-dollars, recorded on the exchange and in the ledger."""
        dep = ex.served
        if dep is None or ex.operation == "count_tokens":
            return 0
        usage = ex.usage
        if usage.total_tokens == 0:
            if ex.error is not None or ex.upstream is None:
                return 0
            usage = self._stream_estimate(ex)
            ex.usage = usage
            ex.trace.append(
                ("settle", {"usage_estimated": True, "streamed_bytes": ex.streamed_bytes})
            )
        cost = self.prices.cost_micros(dep, usage)
        ex.cost = cost / MICROS
        p = ex.principal
        self.budgets.ledger.append(
            SpendRow(
                request_id=ex.id,
                key_id=p.key_id,
                user_id=p.user_id,
                team_id=p.team_id,
                project_id=p.project_id,
                model=dep.model[:200],
                provider=dep.provider.name,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                cost_micros=cost,
                created_at=self.budgets.clock(),
            )
        )
        return cost

    def _stream_estimate(self, ex: Exchange) -> Usage:
        """A stream that ended without usage (the client left): bill what was produced."""
        res = ex.reservation
        prompt = res.prompt_tokens if res is not None else prompt_estimate(ex)
        cap = res.max_output if res is not None else max_output(ex)
        per = STREAM_BYTES_PER_TOKEN.get(ex.protocol, 150)
        completion = min(cap, math.ceil(ex.streamed_bytes / per))
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    def _soft_alert(self, ex: Exchange, b: Budget, hold: Hold, spent: int) -> None:
        detail: dict[str, Any] = {
            "soft_limit_reached": b.id,
            "scope": b.scope,
            "scope_id": b.scope_id,
            "period": b.period,
            "soft_limit_usd": (b.soft_limit_micros or 0) / MICROS,
            "spent_usd": spent / MICROS,
        }
        ex.trace.append(("settle", detail))
        if self.budgets.first_alert(hold):
            log.warning(
                "budget %s: soft limit %s reached by %s %r (%s spent this %s window)",
                b.id,
                _money(b.soft_limit_micros),
                b.scope,
                b.scope_id,
                _money(spent),
                b.period,
                extra={"event": "budget.soft_limit", **detail, "window_start": iso(hold.window)},
            )
            if self.events.wants("budget.soft_limit"):
                data = {k: v for k, v in detail.items() if k != "soft_limit_reached"}
                data = {"budget_id": b.id, **data, "window_start": iso(hold.window)}
                emit_for(self.events, "budget.soft_limit", ex, data)
