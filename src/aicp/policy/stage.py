"""Stage 5, policy: which of the request's candidate routes the policy set allows.

The candidates are every deployment the requested name can reach (its
deployments and its fallbacks'), or the forced route; each becomes a Cedar
resource with its live health (latency EWMA, error rate, breaker), the
request's class, sensitivity, trust, mode, budget and findings its context.
The route stage keeps the allowed routes, preferred ones first. Offline mode
allows local routes only, whatever the policy files say.

Admins may bypass named policies (`x-aicp-policy-bypass: id,id`) or force a
route the policies forbid (`x-aicp-route`); either is recorded, counted and
announced as `policy.override`. When nothing is allowed the client gets 403
naming the policies, never their text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aicp.errors import PermissionDenied, PolicyDenied
from aicp.guardrails.stages import redact_more
from aicp.observability.events import EventBus
from aicp.plane.announce import MODEL_CHARS, emit_for
from aicp.plane.exchange import Exchange, Principal
from aicp.policy.model import Decision, PrincipalFacts, RequestFacts, RouteFacts, RouteVerdict
from aicp.routing.router import Deployment, Router

if TYPE_CHECKING:
    from aicp.accounting.budgets import BudgetService
    from aicp.policy.engine import PolicyEngine
    from aicp.policy.files import Policy

#: Context attributes read from the budget counters, and how long a reading is used.
_BUDGET_FACTS = frozenset({"budget_remaining_micros", "budget_fraction_left_pct"})
BUDGET_FACT_TTL_S = 1.0

#: The id offline mode's own rule is reported under (the pack has a policy of this id too).
OFFLINE = "offline-local-only"


def principal_facts(p: Principal) -> PrincipalFacts:
    return PrincipalFacts(
        key_id=p.key_id or "anonymous",
        user_id=p.user_id or "",
        team_id=p.team_id or "",
        service_account_id=p.service_account_id or "",
        trust_level=p.trust_level,
        is_admin=p.is_admin,
    )


def route_facts(d: Deployment) -> RouteFacts:
    health = d.health
    total, failed = health.breaker.counts()
    provider = d.provider
    return RouteFacts(
        key=d.key,
        provider=provider.name,
        model=d.model,
        locality="local" if provider.local else "external",
        region=getattr(provider, "region", None) or "",
        cost_micros_per_mtok=round(d.cost * 1_000_000),
        latency_ms=_coarse(health.ewma_ms),
        # As the breaker: a rate over fewer requests than it needs says nothing yet.
        error_rate_bp=failed * 10_000 // total
        if total >= health.breaker.settings.min_requests
        else 0,
        breaker=health.breaker.state,
    )


def _coarse(ms: float | None) -> int:
    """A latency to two significant digits (at least 1 once measured): within 5% is good
    enough to hold against an SLA, and the decision cache stops missing on every reply."""
    if not ms:
        return 0
    value = max(1, round(ms))
    digits = len(str(value))
    if digits <= 2:
        return value
    step: int = 10 ** (digits - 2)
    rounded: int = round(value / step)
    return rounded * step


def declared_tools(body: dict[str, Any]) -> list[str]:
    """Names of the tools (functions) a request offers the model, in any protocol."""
    names: list[str] = []
    tools = body.get("tools")
    functions = body.get("functions")  # OpenAI's legacy form of tools
    offered = [
        *(tools if isinstance(tools, list) else ()),
        *(functions if isinstance(functions, list) else ()),
    ]
    for tool in offered:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str) and name:
            names.append(name)
    return list(dict.fromkeys(names))


def _ids(header: str | None) -> frozenset[str]:
    if not header:
        return frozenset()
    return frozenset(part.strip() for part in header.split(",") if part.strip())


class PolicyStage:
    name = "policy"

    def __init__(
        self,
        engine: PolicyEngine | None,
        router: Router,
        budgets: BudgetService | None,
        events: EventBus,
        production_tools: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.router = router
        self.budgets = budgets
        self.events = events
        self.production = frozenset(production_tools)
        #: Budget facts by the ids of the budgets that apply: (when read, facts).
        self._budget_seen: dict[tuple[str, ...], tuple[float, tuple[int, int]]] = {}

    async def __call__(self, ex: Exchange) -> None:
        p = ex.principal
        headers = ex.headers
        bypass = _ids(headers.get("x-aicp-policy-bypass"))
        forced = headers.get("x-aicp-route")
        asked = headers.get("x-aicp-override", "").strip().lower() in ("1", "true", "yes")
        if (bypass or asked) and not p.is_admin:
            name = "x-aicp-policy-bypass" if bypass else "x-aicp-override"
            raise PermissionDenied(f"{name} needs an admin key", code="policy_bypass_denied")
        if forced and p.can_force_routes:
            # Resolved once, here: the route stage uses this very route (a name with
            # several deployments picks one at random, and a second pick could differ).
            ex.route = self.router.forced(forced)
            candidates = ex.route.chain
        else:
            # Resolved once, here, for the route stage too: it keeps what is allowed.
            ex.route = self.router.resolve(ex.model)
            candidates = ex.route.chain
        routes = [route_facts(d) for d in candidates]
        ex.bypass = bypass
        request = await self._request_facts(ex, bypass, asked)
        who = principal_facts(p)
        if self.engine is not None:
            self._tools(ex, who, request)
            decision = self.engine.decide(who, routes, request)
        else:
            decision = Decision(
                tuple(RouteVerdict(r.key, True, ()) for r in routes), (), frozenset(), ()
            )
        if ex.offline:
            decision = _offline(decision, routes)
        relaxed: list[str] = []
        if not decision.allowed and self.engine is not None:
            decision, relaxed = _relax(decision, self.engine.policies.policies)
        ex.decision = decision
        if decision.redactions and ex.hits:
            redact_more(ex, decision.redactions)
        record: dict[str, Any] = decision.as_dict()
        if bypass:
            record["bypassed"] = sorted(bypass)
        if relaxed:
            record["relaxed"] = relaxed
        overridden = bool(bypass)
        if not decision.allowed:
            if forced and p.is_admin and not ex.offline:
                record["override"] = "forced route"
                overridden = True
            else:
                ex.trace.append(("policy", record))
                self._denied(ex, decision)
        ex.trace.append(("policy", record))
        if overridden and self.events.wants("policy.override"):
            data = {"model": ex.model[:MODEL_CHARS], "bypassed": sorted(bypass), "forced": forced}
            emit_for(self.events, "policy.override", ex, data)

    def _tools(self, ex: Exchange, who: PrincipalFacts, request: RequestFacts) -> None:
        """`use_tool` for every tool the request declares; a forbidden one is a 403."""
        names = declared_tools(ex.body)
        if not names or self.engine is None:
            return
        verdicts = self.engine.authorize_tools(
            who, [(n, n in self.production) for n in names], request
        )
        ex.trace.append(
            (
                "policy",
                {
                    "tools": {
                        n: {"allowed": ok, "policies": list(ids)}
                        for n, (ok, ids) in verdicts.items()
                    }
                },
            )
        )
        denied = {n: ids for n, (ok, ids) in verdicts.items() if not ok}
        if denied:
            ex.route = None
            name, ids = next(iter(denied.items()))
            if self.events.wants("policy.denied"):
                data = {"model": ex.model[:MODEL_CHARS], "tools": sorted(denied)}
                emit_for(self.events, "policy.denied", ex, data)
            named = ", ".join(ids) or "no policy permits it"
            raise PolicyDenied(
                f"the tool {name[:MODEL_CHARS]!r} is forbidden by policy ({named})",
                param=",".join(ids) or None,
            )

    async def _request_facts(
        self, ex: Exchange, bypass: frozenset[str], override: bool
    ) -> RequestFacts:
        now = time.gmtime(ex.wall_start)
        remaining, left_pct = await self._budget(ex)
        return RequestFacts(
            task_class=ex.task_class,
            sensitivity=ex.sensitivity,
            trust=ex.trust,
            mode="offline" if ex.offline else ex.mode,
            budget_remaining_micros=remaining,
            budget_fraction_left_pct=left_pct,
            latency_sla_ms=ex.latency_sla_ms,
            hour=now.tm_hour,
            weekday=now.tm_wday,
            findings=frozenset(ex.findings),
            admin_override=override,
            bypass=bypass,
        )

    def _reads_budget(self) -> bool:
        engine = self.engine
        if engine is None:
            return False
        reads = engine.policies.reads
        return reads.context_whole or not _BUDGET_FACTS.isdisjoint(reads.context_attrs)

    async def _budget(self, ex: Exchange) -> tuple[int, int]:
        """The tightest applicable budget: micro-dollars left and the percentage left.

        Read only when some policy reads it, and at most once a second per set of
        budgets: a policy about a budget running low does not need the last cent,
        and with Redis counters every read is a round trip.
        """
        sv = self.budgets
        if sv is None or not sv.by_scope or not self._reads_budget():
            return -1, 100
        found = sv.applicable(ex.principal)
        if not found:
            return -1, 100
        now = sv.clock()
        key = tuple(b.id for b in found)
        cached = self._budget_seen.get(key)
        if cached is not None and now - cached[0] < BUDGET_FACT_TTL_S:
            return cached[1]
        if len(self._budget_seen) >= 4096:
            self._budget_seen.clear()
        holds = [sv.hold(b, now) for b in found]
        await sv.prime(found, holds)
        tightest: tuple[int, int] | None = None
        for b, hold in zip(found, holds, strict=True):
            limit = b.hard_limit_micros
            if limit is None:  # a soft limit only: nothing refuses, nothing runs out
                continue
            spent, reserved = await sv.counters.read(hold)
            left = max(0, limit - spent - reserved)
            pct = left * 100 // limit if limit > 0 else 0
            if tightest is None or pct < tightest[1]:
                tightest = (left, pct)
        facts = tightest or (-1, 100)
        self._budget_seen[key] = (now, facts)
        return facts

    def _denied(self, ex: Exchange, decision: Decision) -> None:
        ex.route = None  # nothing was routed (the receipt and a simulation say so)
        ids = sorted({i for ids in decision.forbidden.values() for i in ids})
        if self.events.wants("policy.denied"):
            data = {"model": ex.model[:MODEL_CHARS], "forbidden": decision.as_dict()["forbidden"]}
            emit_for(self.events, "policy.denied", ex, data)
        named = ", ".join(ids) if ids else "no policy permits them"
        raise PolicyDenied(
            f"every route for model {ex.model[:MODEL_CHARS]!r} is forbidden by policy ({named})",
            param=",".join(ids) or None,
        )


def _relax(decision: Decision, policies: Mapping[str, Policy]) -> tuple[Decision, list[str]]:
    """With no route allowed: the routes only @soft policies forbid, allowed after all."""
    relaxed: set[str] = set()
    verdicts = []
    for v in decision.verdicts:
        soft = bool(v.policies) and all(
            (p := policies.get(i)) is not None and p.soft for i in v.policies
        )
        if not v.allowed and soft:
            relaxed.update(v.policies)
            v = RouteVerdict(v.key, True, ())
        verdicts.append(v)
    if not relaxed:
        return decision, []
    return replace(decision, verdicts=tuple(verdicts)), sorted(relaxed)


def _offline(decision: Decision, routes: list[RouteFacts]) -> Decision:
    """`decision` with every external route forbidden (also by OFFLINE)."""
    external = {r.key for r in routes if r.locality != "local"}
    verdicts = []
    for v in decision.verdicts:
        if v.key in external:
            ids = () if v.allowed else v.policies
            v = RouteVerdict(v.key, False, ids if OFFLINE in ids else (*ids, OFFLINE))
        verdicts.append(v)
    preferred = tuple(k for k in decision.preferred if k not in external)
    return replace(decision, verdicts=tuple(verdicts), preferred=preferred)
