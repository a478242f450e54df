"""The limits stage (admission, after route) and the meter stage (token correction).

Limits apply per key, user and team (from the principal) and per model
deployment (from the configuration). The stage takes one request and the
estimated tokens (prompt estimate + max_tokens) from every applicable bucket
in one store call; the meter stage corrects the tokens with the actual usage
once the response is done (all of them given back when the request failed).
Every response then carries OpenAI's `x-ratelimit-*` headers for the
tightest limit; a refused request is a 429 naming the limit, with Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aicp.accounting.ratelimit import (
    PERIOD_MS,
    REQUESTS,
    TOKENS,
    Charge,
    Limit,
    Outcome,
    RateLimiter,
    remaining,
    reset_ms,
    retry_seconds,
)
from aicp.config import Settings
from aicp.errors import RateLimited
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange, Principal
from aicp.protocol.tokens import estimate_request_tokens, estimate_tokens

#: provider/model -> that deployment's limits.
DeploymentLimits = Mapping[str, tuple[Limit, ...]]

_OUTPUT_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def _pair(scope: str, owner: str, rpm: int | None, tpm: int | None) -> list[Limit]:
    out = []
    if rpm:
        out.append(Limit(scope, owner, REQUESTS, rpm))
    if tpm:
        out.append(Limit(scope, owner, TOKENS, tpm))
    return out


def limits_from_metadata(metadata: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(rpm, tpm) from a user's or team's metadata `{"rpm": .., "tpm": ..}`; junk is ignored."""

    def one(name: str) -> int | None:
        value = (metadata or {}).get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return value if ok else None

    return one("rpm"), one("tpm")


def principal_limits(p: Principal) -> list[Limit]:
    out: list[Limit] = []
    if p.key_id is not None and (p.rpm or p.tpm):
        out += _pair("key", p.key_id, p.rpm, p.tpm)
    if p.user_id is not None and (p.user_rpm or p.user_tpm):
        out += _pair("user", p.user_id, p.user_rpm, p.user_tpm)
    if p.team_id is not None and (p.team_rpm or p.team_tpm):
        out += _pair("team", p.team_id, p.team_rpm, p.team_tpm)
    return out


def deployment_limits(settings: Settings) -> dict[str, tuple[Limit, ...]]:
    """Each configured deployment's limits; one named twice keeps the tighter of each."""
    rates: dict[str, tuple[int | None, int | None]] = {}
    for model in settings.models:
        for d in model.deployments:
            key = f"{d.provider}/{d.model}"
            rpm, tpm = rates.get(key, (None, None))
            rates[key] = (_tighter(rpm, d.rpm), _tighter(tpm, d.tpm))
    out = {}
    for key, (rpm, tpm) in rates.items():
        if rpm or tpm:
            out[key] = tuple(_pair("deployment", key, rpm, tpm))
    return out


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def estimate_cost(ex: Exchange) -> int:
    """Tokens a request may use: its prompt estimate plus its output cap."""
    body = ex.body
    if ex.operation == "count_tokens":
        return 0
    if ex.operation == "embeddings":
        return estimate_tokens(body.get("input") or "")
    n = estimate_request_tokens(body)  # the Responses API's input and instructions included
    for name in _OUTPUT_CAPS:
        cap = body.get(name)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            return n + cap
    return n


@dataclass(slots=True)
class TokenHold:
    """The token charges a request holds until the meter stage corrects them."""

    tokens: list[Limit]
    estimate: int


class LimitsStage:
    name = "limits"

    #: Principals' limits are remembered (keys repeat); the memo is cleared at this size.
    MEMO_SIZE = 10_000

    def __init__(
        self,
        limiter: RateLimiter,
        deployments: DeploymentLimits | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.limiter = limiter
        self.deployments = deployments or {}
        self.events = events or EventBus()
        self._memo: dict[tuple[object, ...], tuple[Limit, ...]] = {}

    def _required(self, p: Principal) -> tuple[Limit, ...]:
        if not (p.rpm or p.tpm or p.user_rpm or p.user_tpm or p.team_rpm or p.team_tpm):
            return ()
        ident: tuple[object, ...] = (p.key_id, p.rpm, p.tpm, p.user_id, p.user_rpm, p.user_tpm)
        ident += (p.team_id, p.team_rpm, p.team_tpm)
        limits = self._memo.get(ident)
        if limits is None:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            limits = self._memo[ident] = tuple(principal_limits(p))
        return limits

    async def __call__(self, ex: Exchange) -> None:
        required = self._required(ex.principal)
        groups: list[tuple[int, tuple[Limit, ...]]] = []  # (index in the chain, limits)
        free = -1  # chain index of the first unlimited deployment, if any
        route = ex.route
        if self.deployments and route is not None:
            for i, dep in enumerate(route.chain):
                limits = self.deployments.get(dep.key)
                if limits is None:
                    free = i  # the deployments can never all be full
                    break
                if dep.health.breaker.available():
                    groups.append((i, limits))
        if not required and not groups:
            return  # the common case: nothing to count, nothing to send
        cost = -1
        charges: list[Charge] = []
        for g, limits in enumerate([required, *(lim for _, lim in groups)]):
            for limit in limits:
                if limit.unit == TOKENS:
                    cost = estimate_cost(ex) if cost < 0 else cost
                    charges.append(Charge(limit, cost, g))
                else:
                    charges.append(Charge(limit, 1, g))
        outcome = await self.limiter.acquire(charges, free >= 0)
        taken = [i for i, c in enumerate(charges) if c.group == 0 or c.group == outcome.chosen]
        ex.response_headers.update(headers(charges, outcome, taken))
        if not outcome.admitted:
            ex.trace.append(("limits", {"admitted": False, "retry_ms": outcome.retry_ms}))
            i, charge = binding(charges, outcome)
            if self.events.wants("ratelimit.exceeded"):
                self._announce(ex, charge.limit, outcome)
            raise refusal(ex, charges, outcome, i)
        if route is not None and groups:
            # Deployments before the one charged are full: drop them from the chain.
            start = groups[outcome.chosen - 1][0] if outcome.chosen else free
            if start > 0:
                route.chain = route.chain[start:]
        tokens = [charges[i].limit for i in taken if charges[i].limit.unit == TOKENS]
        if tokens and cost > 0:  # count_tokens costs no tokens, so none to correct
            ex.token_hold = TokenHold(tokens, cost)
        ex.trace.append(("limits", {"admitted": True, "charged": len(taken)}))

    def _announce(self, ex: Exchange, limit: Limit, outcome: Outcome) -> None:
        data = {
            "scope": limit.scope,
            "owner": limit.owner,
            "limit": "rpm" if limit.unit == REQUESTS else "tpm",
            "per_minute": limit.per_minute,
            "retry_after_s": retry_seconds(outcome.retry_ms),
            "retry_after_ms": max(1, outcome.retry_ms),
        }
        emit_for(self.events, "ratelimit.exceeded", ex, data)


class MeterStage:
    """Response stage: corrects the tokens charged with the actual usage."""

    name = "meter"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, ex: Exchange) -> None:
        held, ex.token_hold = ex.token_hold, None
        if held is None:
            return
        # A failed request used what the upstream reported, usually nothing; an
        # abandoned or broken stream what it produced before it ended.
        delta = ex.usage.total_tokens - held.estimate
        if delta:
            await self.limiter.adjust([(limit, delta) for limit in held.tokens])


# --- what the client sees --------------------------------------------------------------


def headers(charges: Sequence[Charge], outcome: Outcome, taken: Sequence[int]) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for the tightest request and token limits."""
    if not outcome.admitted:
        taken = range(len(charges))  # refused: every limit that was looked at
    out: dict[str, str] = {}
    for unit in (REQUESTS, TOKENS):
        best: tuple[int, int, int] | None = None  # (remaining, -reset, limit)
        for i in taken:
            limit = charges[i].limit
            if limit.unit != unit:
                continue
            level = outcome.levels[i]
            key = (remaining(level, limit.per_minute), -reset_ms(level, limit.per_minute))
            if best is None or key < best[:2]:
                best = (*key, limit.per_minute)
        if best is not None:
            out[f"x-ratelimit-limit-{unit}"] = str(best[2])
            out[f"x-ratelimit-remaining-{unit}"] = str(best[0])
            out[f"x-ratelimit-reset-{unit}"] = duration(-best[1])
    return out


def duration(ms: int) -> str:
    """A duration as OpenAI writes it: `17ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def binding(charges: Sequence[Charge], outcome: Outcome) -> tuple[int, Charge]:
    """The refused limit that binds longest (else the deployments' tightest)."""
    failing = [(i, c) for i, c in enumerate(charges) if not outcome.fits[i]]
    required = [(i, c) for i, c in failing if c.group == 0]
    pool = required or failing

    def wait(item: tuple[int, Charge]) -> int:
        i, c = item
        limit = c.limit
        need = min(c.cost, limit.per_minute) * PERIOD_MS
        return outcome.levels[i] + need - limit.per_minute * PERIOD_MS

    return max(pool, key=wait)


def refusal(ex: Exchange, charges: Sequence[Charge], outcome: Outcome, i: int) -> RateLimited:
    """The 429, naming the limit at `i` (the `binding` one)."""
    charge = charges[i]
    limit = charge.limit
    seconds = retry_seconds(outcome.retry_ms)
    what = "RPM" if limit.unit == REQUESTS else "TPM"
    used = outcome.levels[i] // PERIOD_MS
    message = (
        f"Rate limit reached for {_owner(ex, limit)} on {limit.unit} per minute ({what}): "
        f"limit {limit.per_minute}, used {used}, requested {charge.cost}. "
        f"Please try again in {seconds}s."
    )
    return RateLimited(
        message,
        headers={"retry-after": str(seconds), "retry-after-ms": str(max(1, outcome.retry_ms))},
    )


def _owner(ex: Exchange, limit: Limit) -> str:
    if limit.scope == "key":
        return f"key {ex.principal.display or limit.owner}"
    if limit.scope == "deployment":
        return f"deployment {limit.owner} of model {ex.model!r}"
    return f"{limit.scope} {limit.owner}"
