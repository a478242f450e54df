"""CPU per policy decision: the shipped pack, one key, 10 candidate routes.

    .venv/bin/python bench/policy_cpu.py

Each line is the best of seven batches (process time), in µs per `decide()`:

- warm: the same facts every time (the decision cache answers);
- reused outcomes: the request differs only in facts no policy reads (the
  remaining budget), so each route's cached outcome is reused;
- one route changed: one route's latency moved; Cedar sees that route only;
- cold request: a fact the pack reads (the latency SLA) changes on every call,
  so Cedar decides all 10 routes (their parsed entities are reused);
- cold: the routes' latencies change too, so nothing cached is of use.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aicp.policy.engine import PolicyEngine, PolicySet
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts

ROUTES = 10
BATCH = 400


def routes(latency_shift: int = 0) -> list[RouteFacts]:
    return [
        RouteFacts(
            key=f"p{i}/m{i}",
            provider=f"p{i}",
            model=f"m{i}",
            locality="local" if i % 3 == 0 else "external",
            region="eu-west-1",
            cost_micros_per_mtok=1_000_000 * i,
            latency_ms=80 * i + latency_shift,
            error_rate_bp=60 * i,
        )
        for i in range(ROUTES)
    ]


def best(call: Callable[[int], object]) -> float:
    call(-1)
    batches = []
    n = 0
    for _ in range(7):
        started = time.process_time()
        for _ in range(BATCH):
            call(n)
            n += 1
        batches.append((time.process_time() - started) / BATCH * 1e6)
    return min(batches)


def main() -> None:
    engine = PolicyEngine(PolicySet.load(None))
    principal = PrincipalFacts("k1", team_id="t1", trust_level=2)
    fixed = routes()
    request = RequestFacts(task_class="code", latency_sla_ms=650, budget_fraction_left_pct=15)
    decision = engine.decide(principal, fixed, request)
    assert decision.allowed and decision.forbidden and decision.preferred, decision

    def sla(n: int) -> RequestFacts:
        return RequestFacts(task_class="code", latency_sla_ms=1000 + n, budget_fraction_left_pct=15)

    def budget(n: int) -> RequestFacts:
        return RequestFacts(
            task_class="code",
            latency_sla_ms=650,
            budget_fraction_left_pct=15,
            budget_remaining_micros=n + 10,
        )

    def one_moved(n: int) -> list[RouteFacts]:
        moved = list(fixed)
        moved[5] = RouteFacts(**{**_fields(fixed[5]), "latency_ms": 10_000 + n})
        return moved

    results = {
        "warm": best(lambda n: engine.decide(principal, fixed, request)),
        "reused outcomes": best(lambda n: engine.decide(principal, fixed, budget(n))),
        "one route changed": best(lambda n: engine.decide(principal, one_moved(n), request)),
        "cold request": best(lambda n: engine.decide(principal, fixed, sla(n))),
        "cold": best(lambda n: engine.decide(principal, routes(n + 1), sla(n))),
    }
    for name, micros in results.items():
        print(f"{name + ':':20}{micros:8.1f} µs CPU per decide() ({ROUTES} routes)")


def _fields(route: RouteFacts) -> dict[str, object]:
    return {name: getattr(route, name) for name in RouteFacts.__dataclass_fields__}


if __name__ == "__main__":
    main()
