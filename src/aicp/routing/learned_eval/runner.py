"""The learned strategy's utility against the best fixed route and round-robin, on a fleet.

By default through a gateway (gateway.py: real requests, fake upstreams whose
injected faults are the fleet, 3 seeds, about 8 s each); `--simulated` routes
in process on the simulated fleet (20 seeds in under 2 s), for many seeds.

Utility is the strategy's own formula (`learned.utility`) applied to each
route's truth at each request, so the scores are expectations, free of the
noise of single outcomes, and every policy is scored on the same fleet. The
references (fastest latency, cheapest cost) are the fleet's at request 1.

The targets, over runs with different seeds (one run's 99 steady requests are
too few to judge alone): over the steady state (after the first `settle`
requests, before the change) the strategy's utility is on average within 5% of
the best fixed route in hindsight; and in at least 90% of runs more than half
of 50 consecutive requests go to the new best route within 200 requests of the
change.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from aicp.memory.routes import RouteMemory
from aicp.protocol.jsonutil import dumps
from aicp.routing.learned import LearnedSettings, LearnedStrategy, Reference, Weights, utility
from aicp.routing.learned_eval.fleet import Fleet, SimulatedFleet, degrading_fleet

TARGET_VS_BEST = 0.95
TARGET_RECOVERY = 200
#: Share of runs that must recover within TARGET_RECOVERY.
TARGET_RECOVERED = 0.9
#: Recovery: more than SHARE of the last WINDOW requests go to the new best route.
WINDOW, SHARE = 50, 0.5


class ManualClock:
    """Simulated time, which `run` moves on by one step per request."""

    __slots__ = ("now",)

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(
    fleet: Fleet,
    strategy: LearnedStrategy,
    clock: ManualClock,
    requests: int,
    task_class: str = "general",
    seconds_per_request: float = 1.0,
) -> list[str]:
    """Send requests 1..`requests` through the strategy; the route each went to, in order."""
    routes = fleet.routes()
    nominal = {r.key: r.latency_ms for r in routes}
    memory = strategy.memory
    picks: list[str] = []
    for t in range(1, requests + 1):
        clock.now = t * seconds_per_request
        key = strategy.choose(task_class, routes, nominal).chosen.key
        outcome = fleet.outcome(key, t)
        memory.observe(task_class, key, outcome)
        if outcome.ok:
            score = fleet.feedback(key, t)
            if score is not None:
                memory.feedback(task_class, key, score)
        picks.append(key)
    return picks


@dataclass(frozen=True, slots=True)
class Window:
    label: str
    first: int
    last: int
    learned: float  # mean utility per request
    best_fixed: float
    best_route: str
    round_robin: float

    @property
    def vs_best(self) -> float:
        return self.learned / self.best_fixed

    @property
    def vs_round_robin(self) -> float:
        return self.learned / self.round_robin


class Scorer:
    """Expected utility of each route at each request, from the fleet's truth."""

    def __init__(self, fleet: Fleet, weights: Weights, requests: int, smoothing: float) -> None:
        routes = fleet.routes()
        start = [fleet.truth(r.key, 1) for r in routes]
        dearest = max(t.cost for t in start)
        ref = Reference(
            min(t.latency_ms for t in start), min(t.cost for t in start), smoothing * dearest
        )
        self.keys = [r.key for r in routes]
        #: route -> utility at request t (index t - 1)
        self.table: dict[str, list[float]] = {}
        for key in self.keys:
            truths = [fleet.truth(key, t) for t in range(1, requests + 1)]
            self.table[key] = [
                utility(weights, x.success, x.quality, x.latency_ms, x.cost, ref) for x in truths
            ]

    def window(self, label: str, picks: Sequence[str], first: int, last: int) -> Window:
        span = range(first - 1, last)
        n = len(span)
        learned = sum(self.table[picks[i]][i] for i in span) / n
        fixed = {k: sum(self.table[k][i] for i in span) / n for k in self.keys}
        best = max(fixed, key=lambda k: fixed[k])
        rr = sum(self.table[self.keys[i % len(self.keys)]][i] for i in span) / n
        return Window(label, first, last, learned, fixed[best], best, rr)

    def best_at(self, t: int) -> str:
        return max(self.keys, key=lambda k: self.table[k][t - 1])


def recovery(picks: Sequence[str], best: str, change_at: int) -> int | None:
    """Requests from the change until more than SHARE of the last WINDOW went to `best`."""
    for last in range(change_at, len(picks) + 1):
        recent = picks[max(last - WINDOW, 0) : last]
        if len(recent) == WINDOW and recent.count(best) > SHARE * WINDOW:
            return last - change_at + 1
    return None


@dataclass(frozen=True, slots=True)
class Result:
    seed: int
    windows: list[Window]
    steady: Window
    new_best: str
    recovery: int | None
    us_per_request: float

    @property
    def recovered(self) -> bool:
        return self.recovery is not None and self.recovery <= TARGET_RECOVERY


@dataclass(frozen=True, slots=True)
class Summary:
    runs: int
    #: Mean over runs of the steady state's utility against the best fixed route.
    vs_best: float
    vs_round_robin: float
    #: Share of runs that recovered in time; median and worst recovery (None: never).
    recovered: float
    median_recovery: int | None
    worst_recovery: int | None

    @property
    def met(self) -> bool:
        return self.vs_best >= TARGET_VS_BEST and self.recovered >= TARGET_RECOVERED


def summarise(results: Sequence[Result]) -> Summary:
    n = len(results)
    # A run that never recovered sorts last.
    recoveries = sorted(results, key=lambda r: (r.recovery is None, r.recovery or 0))
    return Summary(
        n,
        sum(r.steady.vs_best for r in results) / n,
        sum(r.steady.vs_round_robin for r in results) / n,
        sum(r.recovered for r in results) / n,
        recoveries[n // 2].recovery,
        recoveries[-1].recovery,
    )


def evaluate(
    seed: int,
    requests: int = 1200,
    change_at: int = 600,
    settle: int = 500,
    half_life_s: float = 400.0,
    settings: LearnedSettings | None = None,
    fleet: Fleet | None = None,
) -> Result:
    """One seeded run through route memory and the strategy, scored; by default on
    the degrading fleet."""
    settings = settings or LearnedSettings()
    fleet = fleet or SimulatedFleet(degrading_fleet(change_at), seed=seed)
    clock = ManualClock()
    memory = RouteMemory(half_life_s=half_life_s, clock=clock)
    strategy = LearnedStrategy(memory, settings, random.Random(seed))
    started = time.perf_counter()
    picks = run(fleet, strategy, clock, requests)
    us = (time.perf_counter() - started) / requests * 1e6
    return score(fleet, picks, settings, change_at, settle, seed, us)


def score(
    fleet: Fleet,
    picks: Sequence[str],
    settings: LearnedSettings,
    change_at: int,
    settle: int,
    seed: int = 0,
    us_per_request: float = 0.0,
) -> Result:
    """Score the routes requests 1..len(picks) went to, however they were chosen
    (in process by `run`, or by a gateway in front of a fake upstream)."""
    requests = len(picks)
    if not 0 < settle < change_at - 1 < requests:
        raise ValueError("need 0 < settle < change_at - 1 < requests")
    scorer = Scorer(fleet, settings.weights, requests, settings.cost_smoothing)
    steady = scorer.window("steady", picks, settle + 1, change_at - 1)
    windows = [
        scorer.window("learning", picks, 1, settle),
        steady,
        scorer.window("after change", picks, change_at, requests),
        scorer.window("after settle", picks, settle + 1, requests),
    ]
    best = scorer.best_at(change_at)
    return Result(seed, windows, steady, best, recovery(picks, best, change_at), us_per_request)


def table(results: Sequence[Result], change_at: int) -> str:
    """Each window's utility per request, the learned strategy's as a mean over runs."""
    lines = [
        f"{'window':<13} {'requests':>10} {'learned':>8} {'(worst)':>8} {'best fixed':>10} "
        f"{'(route)':<16} {'round-robin':>11} {'vs best':>8} {'vs rr':>7}"
    ]
    n = len(results)
    for i, w in enumerate(results[0].windows):
        # The fleet's truth is the same in every run: only the learned column varies.
        runs = [r.windows[i] for r in results]
        learned = sum(x.learned for x in runs) / n
        worst = min(x.learned for x in runs)
        span = f"{w.first}-{w.last}"
        lines.append(
            f"{w.label:<13} {span:>10} {learned:>8.3f} {worst:>8.3f} {w.best_fixed:>10.3f} "
            f"{w.best_route:<16} {w.round_robin:>11.3f} {learned / w.best_fixed:>8.1%} "
            f"{learned / w.round_robin:>7.1%}"
        )
    lines.append("")
    for r in results:
        rec = "never" if r.recovery is None else str(r.recovery)
        lines.append(
            f"seed {r.seed:>2}: steady state {r.steady.vs_best:.1%} of the best fixed route; "
            f"most traffic on {r.new_best} {rec} requests after request {change_at}"
            f"{'' if r.recovered else ' (late)'}; {r.us_per_request:.0f} us per request"
        )
    return "\n".join(lines)


def verdict(s: Summary) -> str:
    median = "never" if s.median_recovery is None else str(s.median_recovery)
    worst = "never" if s.worst_recovery is None else str(s.worst_recovery)
    return "\n".join(
        [
            f"steady state, mean of {s.runs} runs: {s.vs_best:.1%} of the best fixed route "
            f"(target >= {TARGET_VS_BEST:.0%}), {s.vs_round_robin:.1%} of round-robin",
            f"recovered within {TARGET_RECOVERY} requests: {s.recovered:.0%} of runs "
            f"(target >= {TARGET_RECOVERED:.0%}); median {median}, worst {worst}",
            "targets met" if s.met else "targets MISSED",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aicp.routing.learned_eval", description=__doc__
    )
    parser.add_argument(
        "--simulated",
        action="store_true",
        help="route in process on the simulated fleet instead of through a gateway",
    )
    parser.add_argument(
        "--seeds", type=int, help="runs, with seeds 1..N (default: 3 through a gateway, else 20)"
    )
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--change-at", type=int, default=600, help="when the best route degrades")
    parser.add_argument("--settle", type=int, default=500, help="requests before steady state")
    parser.add_argument("--half-life", type=float, default=400.0, help="in requests")
    parser.add_argument(
        "--step-ms", type=float, default=6.0, help="gateway: milliseconds between requests"
    )
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=20.0,
        help="gateway: a route's delay is its simulated latency divided by this",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    seeds = range(1, (args.seeds or (20 if args.simulated else 3)) + 1)
    span = (args.requests, args.change_at, args.settle, args.half_life)
    if args.simulated:
        mode = "in process, simulated fleet"
        results = [evaluate(seed, *span) for seed in seeds]
    else:
        # Imported here: the simulation needs neither the app nor the fake upstreams.
        from aicp.routing.learned_eval import gateway

        mode = (
            f"through the gateway, fake upstreams, a request every {args.step_ms:g} ms, "
            f"latencies / {args.latency_scale:g}"
        )
        pace = gateway.Pace(args.step_ms / 1000.0, args.latency_scale)
        results = [gateway.evaluate(seed, *span, pace=pace) for seed in seeds]
    summary = summarise(results)
    if args.json:
        runs = [{**asdict(r), "recovered": r.recovered} for r in results]
        print(dumps({"summary": {**asdict(summary), "met": summary.met}, "runs": runs}).decode())
    else:
        print(
            f"learned routing ({mode}): {len(degrading_fleet())} routes, {args.requests} "
            f"requests, the best degrades at {args.change_at}, half-life "
            f"{args.half_life:g} requests\n"
        )
        print(table(results, args.change_at))
        print()
        print(verdict(summary))
    return 0 if summary.met else 1
