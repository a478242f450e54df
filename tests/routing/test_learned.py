"""The learned strategy: convergence, exploration, change, evidence and determinism."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import orjson
import pytest

from aicp.memory.routes import Outcome, RouteMemory
from aicp.routing.learned import (
    Choice,
    Estimate,
    LearnedSettings,
    LearnedStrategy,
    Reference,
    Weights,
    utility,
)


@dataclass(frozen=True)
class Cand:
    key: str
    cost: float = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Route:
    success: float
    latency_ms: float = 500.0
    cost: float = 0.001


def strategy(
    seed: int = 0, half_life_s: float = 200.0, explore: float = 0.02, trial_gap_s: float = 10.0
) -> tuple[LearnedStrategy, RouteMemory, Clock]:
    clock = Clock()
    memory = RouteMemory(half_life_s=half_life_s, clock=clock)
    settings = LearnedSettings(explore=explore, trial_gap_s=trial_gap_s)
    return LearnedStrategy(memory, settings, random.Random(seed)), memory, clock


def drive(
    s: LearnedStrategy,
    clock: Clock,
    routes: dict[str, Route],
    requests: int,
    seed: int = 0,
) -> list[str]:
    """One request per second; outcomes drawn from `routes`; the route each went to."""
    rng = random.Random(seed)
    cands = [Cand(k, r.cost) for k, r in routes.items()]
    picks = []
    for _ in range(requests):
        clock.now += 1.0
        key = s.choose("general", cands).chosen.key
        r = routes[key]
        ok = rng.random() < r.success
        latency = r.latency_ms * math.exp(rng.gauss(0.0, 0.2))
        s.memory.observe("general", key, Outcome(ok, latency, cost=r.cost if ok else None))
        picks.append(key)
    return picks


def share(picks: list[str], key: str) -> float:
    return picks.count(key) / len(picks)


# --- learning ---------------------------------------------------------------------


def test_most_traffic_goes_to_a_clear_winner() -> None:
    s, _, clock = strategy(seed=1)
    routes = {"a": Route(0.98), "b": Route(0.75), "c": Route(0.55)}
    picks = drive(s, clock, routes, 400)
    assert share(picks[-150:], "a") > 0.85
    assert share(picks[:3], "a") < 1  # every candidate was tried first


def test_latency_and_cost_decide_between_equally_reliable_routes() -> None:
    s, _, clock = strategy(seed=2)
    routes = {
        "slow": Route(0.99, latency_ms=2000.0),
        "dear": Route(0.99, cost=0.01),
        "good": Route(0.99, latency_ms=400.0, cost=0.001),
    }
    picks = drive(s, clock, routes, 300)
    assert share(picks[-100:], "good") > 0.85


def test_a_new_candidate_is_tried_before_anything_else() -> None:
    s, _, clock = strategy()
    drive(s, clock, {"a": Route(0.99), "b": Route(0.9)}, 100)
    choice = s.choose("general", [Cand("a"), Cand("b"), Cand("new")])
    assert choice.chosen.key == "new"
    assert (choice.reason, choice.why) == ("explore", "untried")


def test_an_untried_candidate_is_forced_once_per_trial_gap() -> None:
    s, _, clock = strategy(trial_gap_s=10.0)
    drive(s, clock, {"a": Route(0.99)}, 50)
    cands = [Cand("a"), Cand("new")]
    assert s.choose("general", cands).why == "untried"
    # No outcome yet (a burst): the next requests are not all sent to it.
    assert [s.choose("general", cands).why for _ in range(20)].count("untried") == 0
    clock.now += 10.0
    assert s.choose("general", cands).why == "untried"


def test_traffic_moves_when_the_best_route_degrades() -> None:
    s, _, clock = strategy(seed=3, half_life_s=400.0)
    routes = {"a": Route(0.99), "b": Route(0.93), "c": Route(0.7)}
    before = drive(s, clock, routes, 500, seed=3)
    assert share(before[-100:], "a") > 0.8
    routes["a"] = Route(0.5, latency_ms=1000.0)
    after = drive(s, clock, routes, 200, seed=4)
    # Within 150 requests most traffic is on the new best route.
    assert share(after[100:150], "b") > 0.6
    assert share(after[-50:], "a") < 0.2


def test_a_degraded_route_that_recovers_is_noticed() -> None:
    s, _, clock = strategy(seed=5, half_life_s=200.0)
    routes = {"a": Route(0.99), "b": Route(0.85)}
    drive(s, clock, routes, 300, seed=5)
    routes["a"] = Route(0.3)
    degraded = drive(s, clock, routes, 300, seed=6)
    assert share(degraded[-100:], "a") < 0.2
    routes["a"] = Route(0.99)
    recovered = drive(s, clock, routes, 600, seed=7)
    assert share(recovered[-100:], "a") > 0.7


def test_a_change_in_success_drops_the_older_evidence() -> None:
    s, memory, clock = strategy(half_life_s=1000.0)
    cands = [Cand("a"), Cand("b")]
    for _ in range(300):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 500.0))
        memory.observe("general", "b", Outcome(True, 500.0))

    def a_now() -> Estimate:
        return next(e for e in s.choose("general", cands).estimates if e.route == "a")

    assert a_now().changed_at is None
    failures = 0
    while a_now().changed_at is None and failures < 50:
        clock.now += 1.0
        memory.observe("general", "a", Outcome(False, error="http_503"))
        failures += 1
    # Seen within a dozen failures, while the long-run rate still says 96%.
    assert failures <= 12
    stats = memory.stats("general", "a")
    assert stats is not None and stats.success_rate is not None and stats.success_rate > 0.95
    seen = clock.now
    assert a_now().changed_at == seen
    # From then on only the evidence since the change counts: the rate the strategy
    # uses falls with every failure, while the long-run one hardly moves.
    for _ in range(15):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(False, error="http_503"))
    a = a_now()
    assert a.changed_at == seen  # the change is remembered
    stats = memory.stats("general", "a")
    assert stats is not None and stats.success_rate is not None and stats.success_rate > 0.9
    assert a.success_rate is not None and a.success_rate < stats.success_rate - 0.08


# --- exploration floor --------------------------------------------------------------


def test_the_exploration_floor_tries_the_route_with_the_least_evidence() -> None:
    s, memory, clock = strategy(explore=0.5)
    cands = [Cand("a"), Cand("b"), Cand("c")]
    for i in range(200):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 500.0))
        if i % 10 == 0:
            memory.observe("general", "b", Outcome(False))
        if i % 40 == 0:
            memory.observe("general", "c", Outcome(False))
    whys = Counter((c.why, c.chosen.key) for c in (s.choose("general", cands) for _ in range(400)))
    assert 150 < whys["floor", "c"] < 250
    assert whys["floor", "a"] == whys["floor", "b"] == 0


def test_without_a_floor_a_hopeless_route_is_left_alone() -> None:
    s, memory, clock = strategy(explore=0.0)
    cands = [Cand("a"), Cand("b")]
    for _ in range(200):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 500.0))
        memory.observe("general", "b", Outcome(False))
    assert {s.choose("general", cands).chosen.key for _ in range(300)} == {"a"}


# --- evidence, fallbacks, determinism ---------------------------------------------------


def test_evidence_holds_each_candidates_statistics_and_sampled_score() -> None:
    s, memory, clock = strategy()
    for i in range(40):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 200.0, cost=0.002))
        memory.observe("general", "b", Outcome(i % 4 != 0, 800.0, cost=0.001))
    memory.feedback("general", "a", 1.0)
    choice = s.choose("general", [Cand("b", 1.0), Cand("a", 2.0)], {"a": 300.0})
    ev = choice.evidence()
    assert ev["strategy"] == "learned" and ev["task_class"] == "general"
    assert ev["chosen"] == choice.chosen.key == ev["candidates"][0]["route"]
    assert ev["reason"] in ("exploit", "explore") and ev["why"] == "sampled"
    by_route = {c["route"]: c for c in ev["candidates"]}
    a, b = by_route["a"], by_route["b"]
    stats = memory.stats("general", "b")
    assert stats is not None
    assert b["count"] == 40 and b["n"] == pytest.approx(stats.n, abs=1e-3)
    assert b["success_rate"] == pytest.approx(0.75, abs=0.01)
    assert b["cost"] == pytest.approx(0.001)
    assert b["feedback"] is None and a["feedback"] == 1.0
    # Measured latency blended with the nominal one as one observation.
    assert 200.0 < a["latency_ms"] < 210.0
    for c in ev["candidates"]:
        assert set(c) >= {"expected", "score", "recent_success_rate", "changed_at"}
    orjson.dumps(ev)


def test_the_fallbacks_follow_in_order_of_sampled_score() -> None:
    s, memory, clock = strategy(explore=0.0)
    cands = [Cand(k) for k in "abcde"]
    for i in range(100):
        clock.now += 1.0
        for k, rate in zip("abcde", (0.9, 0.8, 0.7, 0.6, 0.5), strict=True):
            memory.observe("general", k, Outcome(i % 10 < rate * 10, 500.0))
    for _ in range(50):
        choice = s.choose("general", cands)
        assert sorted(c.key for c in choice.chain) == list("abcde")
        scores = [e.score for e in choice.estimates]
        assert scores[0] == max(scores)
        assert scores[1:] == sorted(scores[1:], reverse=True)
        assert [e.route for e in choice.estimates] == [c.key for c in choice.chain]


def test_exploit_means_the_best_sample_is_also_the_best_expectation() -> None:
    s, memory, clock = strategy(explore=0.0)
    cands = [Cand("a"), Cand("b")]
    for _ in range(3):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 500.0))
        memory.observe("general", "b", Outcome(False))
        memory.observe("general", "b", Outcome(True, 500.0))
    choices = [s.choose("general", cands) for _ in range(300)]
    for c in choices:
        top = max(c.estimates, key=lambda e: e.expected).route
        assert (c.reason == "exploit") == (c.chosen.key == top)
    assert {c.reason for c in choices} == {"exploit", "explore"}


def decisions(seed: int) -> list[Choice[Cand]]:
    s, _, clock = strategy(seed=seed)
    drive(s, clock, {"a": Route(0.9), "b": Route(0.85), "c": Route(0.8)}, 100, seed=9)
    return [s.choose("general", [Cand("a"), Cand("b"), Cand("c")]) for _ in range(50)]


def test_a_seeded_strategy_decides_the_same_every_time() -> None:
    first, again = decisions(11), decisions(11)
    assert [c.evidence() for c in first] == [c.evidence() for c in again]
    other = decisions(12)
    assert [c.evidence() for c in first] != [c.evidence() for c in other]


def test_one_candidate_is_chosen_and_none_is_an_error() -> None:
    s, _, _ = strategy()
    choice = s.choose("general", [Cand("only")])
    assert [c.key for c in choice.chain] == ["only"]
    with pytest.raises(ValueError, match="at least one"):
        s.choose("general", [])


def test_the_router_deployments_are_candidates() -> None:
    from tests.routing.test_router import dep, router

    r = router(models=[{"name": "pool", "deployments": [dep("a", "m1"), dep("b", "m2")]}])
    deployments = r.entries["pool"].deployments
    s, _, _ = strategy()
    choice = s.choose("code", deployments)
    assert choice.chosen in deployments
    assert {c["route"] for c in choice.evidence()["candidates"]} == {"a/m1", "b/m2"}


# --- utility and settings -------------------------------------------------------------


def test_ten_times_slower_or_dearer_costs_the_whole_weight() -> None:
    w = Weights(success=1.0, quality=0.5, latency=0.3, cost=0.2)
    ref = Reference(latency_ms=100.0, cost=1.0, k=0.0)
    base = utility(w, 0.9, 0.8, 100.0, 1.0, ref)
    assert base == pytest.approx(0.9 + 0.4)
    assert utility(w, 0.9, 0.8, 1000.0, 1.0, ref) == pytest.approx(base - 0.3)
    assert utility(w, 0.9, 0.8, 100.0, 10.0, Reference(100.0, 1.0, 1e-12)) == pytest.approx(
        base - 0.2
    )


def test_a_free_route_has_a_bounded_cost_advantage() -> None:
    s, memory, clock = strategy()
    for _ in range(100):
        clock.now += 1.0
        memory.observe("general", "free", Outcome(True, 500.0, cost=0.0))
        memory.observe("general", "paid", Outcome(True, 500.0, cost=0.01))
    ev = s.choose("general", [Cand("free", 0.0), Cand("paid", 1.0)]).estimates
    gap = {e.route: e.expected for e in ev}
    # log10((0.01 + k) / k) with k = 5% of the dearest: about 1.32 tenfolds.
    assert gap["free"] - gap["paid"] == pytest.approx(0.3 * math.log10(21.0), abs=1e-6)


def test_a_configured_cost_is_scaled_by_what_measured_routes_cost() -> None:
    s, memory, clock = strategy()
    for _ in range(50):
        clock.now += 1.0
        memory.observe("general", "a", Outcome(True, 500.0, cost=0.004))
    ev = s.choose("general", [Cand("a", 2.0), Cand("new", 1.0)]).estimates
    assert {e.route: e.cost for e in ev} == pytest.approx({"a": 0.004, "new": 0.002})


def test_weights_from_config_reject_unknown_and_negative_ones() -> None:
    assert Weights.from_mapping({"cost": 1.0}) == Weights(cost=1.0)
    with pytest.raises(ValueError, match="unknown weight 'speed'"):
        Weights.from_mapping({"speed": 1.0})
    with pytest.raises(ValueError, match="'latency'"):
        Weights(latency=-1.0)
    with pytest.raises(ValueError, match="explore"):
        LearnedSettings(explore=1.0)
