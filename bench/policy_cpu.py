"""CPU per policy decision: the shipped pack, one key, 10 candidate routes.

    .venv/bin/python bench/policy_cpu.py

Each line is the best and the median of seven batches (thread CPU time), in
µs per `decide()`; the facts are built before the clock starts:

- warm: the same facts every time (the decision cache answers);
- reused outcomes: the request differs only in facts no policy reads (the
  remaining budget), so each route's cached outcome is reused;
- one route changed: one route's latency moved; Cedar sees that route only;
- cold request: a fact the pack reads (the latency SLA) changes on every call,
  so Cedar decides all 10 routes (their parsed entities are reused);
- cold: the routes' latencies change too, so nothing cached is of use (but
  the Cedar sets built for the pack's pattern of guard outcomes, see
  aicp/policy/prune.py).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

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


Facts = tuple[PrincipalFacts, list[RouteFacts], RequestFacts]


def best(engine: PolicyEngine, make: Callable[[int], Facts]) -> tuple[float, float]:
    """Best and median µs per decide() over seven batches of fresh facts from `make(n)`."""
    facts = [make(n) for n in range(-1, 7 * BATCH)]
    engine.decide(*facts[0])
    gc.collect()
    gc.freeze()  # the collector need not walk the prepared facts (decide's garbage it still does)
    batches = []
    for b in range(7):
        chunk = facts[1 + b * BATCH : 1 + (b + 1) * BATCH]
        started = time.thread_time()
        for principal, routes_, request in chunk:
            engine.decide(principal, routes_, request)
        batches.append((time.thread_time() - started) / BATCH * 1e6)
    gc.unfreeze()
    return min(batches), statistics.median(batches)


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
        moved[5] = replace(fixed[5], latency_ms=10_000 + n)
        return moved

    results = {
        "warm": best(engine, lambda n: (principal, fixed, request)),
        "reused outcomes": best(engine, lambda n: (principal, fixed, budget(n))),
        "one route changed": best(engine, lambda n: (principal, one_moved(n), request)),
        "cold request": best(engine, lambda n: (principal, fixed, sla(n))),
        "cold": best(engine, lambda n: (principal, routes(n + 1), sla(n))),
    }
    for name, (low, middle) in results.items():
        print(
            f"{name + ':':20}{low:8.1f} µs CPU per decide() ({ROUTES} routes), median {middle:.1f}"
        )


if __name__ == "__main__":
    main()
