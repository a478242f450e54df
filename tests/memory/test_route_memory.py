"""Route memory: decay, what a cell keeps, feedback and the snapshot."""

from __future__ import annotations

import math

import orjson
import pytest

from aicp.memory.routes import RECENT, Outcome, RouteMemory


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def memory(half_life_s: float = 60.0, max_cells: int = 10_000) -> tuple[RouteMemory, Clock]:
    clock = Clock()
    return RouteMemory(half_life_s=half_life_s, clock=clock, max_cells=max_cells), clock


OK = Outcome(True, latency_ms=100.0, ttft_ms=20.0, cost=0.002)


# --- decay -----------------------------------------------------------------------


def test_one_half_life_halves_the_weight_and_two_quarter_it() -> None:
    m, clock = memory(60.0)
    m.observe("code", "a/x", OK)
    m.observe("code", "a/x", Outcome(False, error="timeout_error"))
    clock.now += 60
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.successes == pytest.approx(0.5)
    assert s.failures == pytest.approx(0.5)
    clock.now += 60
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.n == pytest.approx(0.5)
    assert m.errors("code", "a/x") == {"timeout_error": pytest.approx(0.25)}
    # The count is not decayed.
    assert s.count == 2


def test_the_recent_sums_decay_recent_times_faster() -> None:
    m, clock = memory(160.0)
    m.observe("code", "a/x", OK)
    clock.now += 160.0 / RECENT
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.recent_successes == pytest.approx(0.5)
    assert s.successes == pytest.approx(0.5 ** (1 / RECENT))


def test_a_newer_outcome_weighs_twice_one_a_half_life_older() -> None:
    m, clock = memory(60.0)
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0))
    clock.now += 60
    m.observe("code", "a/x", Outcome(True, latency_ms=400.0))
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.successes == pytest.approx(1.5)
    expected = (0.5 * math.log(100.0) + 1.0 * math.log(400.0)) / 1.5
    assert s.latency_log_mean == pytest.approx(expected)


def test_latency_is_a_geometric_mean_with_a_log_variance() -> None:
    m, _ = memory()
    for ms in (100.0, 400.0):
        m.observe("code", "a/x", Outcome(True, latency_ms=ms, ttft_ms=ms / 10))
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.latency_ms == pytest.approx(200.0)
    assert s.latency_log_var == pytest.approx(math.log(2.0) ** 2)
    assert s.ttft_log_mean == pytest.approx(math.log(20.0))


def test_failures_count_against_success_but_not_in_latency_or_cost() -> None:
    m, _ = memory()
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0, cost=0.01))
    m.observe("code", "a/x", Outcome(False, latency_ms=5.0, cost=None, error="http_503"))
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.success_rate == pytest.approx(0.5)
    assert s.latency_ms == pytest.approx(100.0)
    assert s.cost == pytest.approx(0.01)


def test_far_apart_outcomes_stay_finite() -> None:
    # Hundreds of half-lives apart: the cell moves its base instead of overflowing.
    m, clock = memory(1.0)
    m.observe("code", "a/x", OK)
    for _ in range(5):
        clock.now += 500
        m.observe("code", "a/x", OK)
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.successes == pytest.approx(1.0)
    assert s.recent_successes == pytest.approx(1.0)
    assert s.latency_ms == pytest.approx(100.0)
    assert all(math.isfinite(v) for v in m.rows()[0].values() if isinstance(v, float))


def test_an_outcome_older_than_the_cell_counts_decayed() -> None:
    m, clock = memory(60.0)
    m.observe("code", "a/x", OK)
    clock.now -= 60  # a process whose clock lags: the outcome is older
    m.observe("code", "a/x", OK)
    clock.now += 60
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.successes == pytest.approx(1.5)
    assert s.updated_at == clock.now


def test_cells_are_per_task_class_and_route() -> None:
    m, _ = memory()
    m.observe("code", "a/x", OK)
    m.observe("legal", "a/x", Outcome(False))
    m.observe("code", "b/y", Outcome(False))
    code = m.stats("code", "a/x")
    assert code is not None and code.success_rate == 1.0
    assert m.stats("legal", "b/y") is None


def test_the_stalest_cell_goes_when_the_memory_is_full() -> None:
    m, clock = memory(max_cells=2)
    m.observe("code", "old", OK)
    clock.now += 1
    m.observe("code", "mid", OK)
    clock.now += 1
    m.observe("code", "new", OK)
    assert m.stats("code", "old") is None
    assert m.stats("code", "mid") is not None
    assert m.stats("code", "new") is not None


def test_a_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        RouteMemory(half_life_s=0)


# --- feedback ---------------------------------------------------------------------


def test_feedback_keeps_a_decayed_mean_and_count() -> None:
    m, clock = memory(60.0)
    m.observe("code", "a/x", OK)
    m.feedback("code", "a/x", 1.0)
    clock.now += 60
    m.feedback("code", "a/x", 0.0)
    s = m.stats("code", "a/x")
    assert s is not None
    assert s.feedback_weight == pytest.approx(1.5)
    assert s.feedback == pytest.approx(0.5 / 1.5)
    assert s.feedback_sum == pytest.approx(0.5)


@pytest.mark.parametrize("score", [-0.5, 1.01, math.nan])
def test_a_feedback_score_outside_zero_to_one_is_refused(score: float) -> None:
    m, _ = memory()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.feedback("code", "a/x", score)
    assert m.snapshot() == []


def test_feedback_for_a_route_without_outcomes_makes_a_cell_with_no_count() -> None:
    m, _ = memory()
    m.feedback("code", "a/x", 0.75)
    s = m.stats("code", "a/x")
    assert s is not None
    assert (s.count, s.n, s.feedback) == (0, 0.0, 0.75)


# --- snapshot ----------------------------------------------------------------------


def test_snapshot_is_sorted_json_with_every_statistic() -> None:
    m, clock = memory(60.0)
    m.observe("legal", "b/y", OK)
    for ms in (100.0, 400.0):
        m.observe("code", "a/x", Outcome(True, latency_ms=ms, ttft_ms=50.0, cost=0.004))
    m.observe("code", "a/x", Outcome(False, error="http_503"))
    m.feedback("code", "a/x", 1.0)
    clock.now += 60
    rows = m.snapshot()
    assert [(r["task_class"], r["route"]) for r in rows] == [("code", "a/x"), ("legal", "b/y")]
    row = rows[0]
    assert row["count"] == 3
    assert row["n"] == pytest.approx(1.5)
    assert row["successes"] == pytest.approx(1.0)
    assert row["failures"] == pytest.approx(0.5)
    assert row["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert row["latency_ms"] == pytest.approx(200.0)
    assert row["latency_p90_ms"] > row["latency_ms"]
    assert row["latency_log_sd"] == pytest.approx(math.log(2.0), abs=1e-4)
    assert row["ttft_ms"] == pytest.approx(50.0)
    assert row["cost_usd"] == pytest.approx(0.004)
    assert row["feedback"] == 1.0
    assert row["feedback_n"] == pytest.approx(0.5)
    assert row["errors"] == {"http_503": pytest.approx(0.5)}
    assert row["updated_at"] == clock.now - 60
    assert row["half_life_s"] == 60.0
    assert row["recent_n"] < row["n"]
    orjson.dumps(rows)  # JSON-ready as it is


def test_snapshot_of_one_task_class() -> None:
    m, _ = memory()
    m.observe("code", "a/x", OK)
    m.observe("legal", "a/x", OK)
    assert [r["task_class"] for r in m.snapshot("legal")] == ["legal"]
    assert m.snapshot("nothing") == []


def test_a_route_without_latency_or_feedback_shows_none() -> None:
    m, _ = memory()
    m.observe("code", "a/x", Outcome(False, error="timeout_error"))
    row = m.snapshot()[0]
    assert row["latency_ms"] is None and row["ttft_ms"] is None
    assert row["feedback"] is None and row["cost_usd"] is None
    assert row["success_rate"] == 0.0
