"""The learned-routing eval: it meets its targets, and its scoring can tell when not."""

from __future__ import annotations

import orjson
import pytest

from aicp.routing.learned import LearnedSettings
from aicp.routing.learned_eval.fleet import SimulatedFleet, degrading_fleet
from aicp.routing.learned_eval.runner import (
    TARGET_RECOVERY,
    TARGET_VS_BEST,
    evaluate,
    main,
    recovery,
    score,
    summarise,
)


def test_the_strategy_meets_the_targets_over_ten_seeds() -> None:
    results = [evaluate(seed) for seed in range(1, 11)]
    summary = summarise(results)
    assert summary.vs_best >= TARGET_VS_BEST
    assert summary.recovered >= 0.9
    assert summary.median_recovery is not None and summary.median_recovery <= 120
    for r in results:
        assert r.steady.vs_best > 0.9, r.seed
        assert r.steady.vs_round_robin > 1.03, r.seed
        after = r.windows[2]
        assert after.label == "after change" and after.best_route == "fleet/premium"
        assert after.vs_round_robin > 1.05, r.seed
    assert summary.met


def test_round_robin_misses_the_targets() -> None:
    fleet = SimulatedFleet(degrading_fleet(600), seed=1)
    keys = [r.key for r in fleet.routes()]
    picks = [keys[i % len(keys)] for i in range(1200)]
    result = score(fleet, picks, LearnedSettings(), change_at=600, settle=500)
    assert result.steady.learned == pytest.approx(result.steady.round_robin)
    assert result.steady.vs_best < TARGET_VS_BEST
    assert result.recovery is None and not result.recovered
    assert not summarise([result]).met


def test_the_best_fixed_route_is_best_in_hindsight() -> None:
    fleet = SimulatedFleet(degrading_fleet(600), seed=1)
    result = score(fleet, ["fleet/balanced"] * 1200, LearnedSettings(), 600, 500)
    steady, after = result.windows[1], result.windows[2]
    assert steady.vs_best == pytest.approx(1.0)
    assert (steady.best_route, after.best_route) == ("fleet/balanced", "fleet/premium")
    assert after.vs_best < 0.7  # staying on the degraded route


def test_recovery_counts_requests_until_most_of_fifty_reach_the_new_best() -> None:
    picks = ["old"] * 100 + ["new"] * 100
    # From request 101 on: the 26th "new" makes 26 of the last 50.
    assert recovery(picks, "new", 101) == 26
    assert recovery(["old"] * 200, "new", 101) is None
    assert TARGET_RECOVERY == 200


def test_the_simulated_fleet_follows_its_phases_and_its_seed() -> None:
    routes = degrading_fleet(change_at=10)
    fleet = SimulatedFleet(routes, seed=3)
    assert fleet.truth("fleet/balanced", 9).success == 0.99
    assert fleet.truth("fleet/balanced", 10).success == 0.65
    assert (
        fleet.truth("fleet/balanced", 10).latency_ms
        == 2 * fleet.truth("fleet/balanced", 9).latency_ms
    )
    draws = [fleet.outcome("fleet/fast", t) for t in range(200)]
    again = SimulatedFleet(routes, seed=3)
    assert draws == [again.outcome("fleet/fast", t) for t in range(200)]
    assert 0.75 < sum(o.ok for o in draws) / 200 < 0.95
    assert all(o.error for o in draws if not o.ok)


def test_main_prints_the_report_and_exits_zero_when_met(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--simulated", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "steady" in out and "round-robin" in out and "targets met" in out


def test_main_exits_non_zero_when_a_target_is_missed(capsys: pytest.CaptureFixture[str]) -> None:
    # A half-life of 5 requests forgets too fast to settle.
    assert main(["--simulated", "--seeds", "3", "--half-life", "5", "--json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert report["summary"]["met"] is False
    assert len(report["runs"]) == 3
