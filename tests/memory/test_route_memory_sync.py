"""Route memory across processes: deltas, merge, combine and load converge."""

from __future__ import annotations

import random

import orjson
import pytest

from aicp.memory.routes import Outcome, RouteMemory, RouteRow, combine
from tests.memory.test_route_memory import Clock

HALF_LIFE = 30.0


#: (time, task class, route, outcome or feedback score)
Event = tuple[float, str, str, Outcome | float]


def outcomes(seed: int, n: int) -> list[Event]:
    """Outcomes and feedback on a few routes, in time order."""
    rng = random.Random(seed)
    t, events = 1_700_000_000.0, list[Event]()
    for _ in range(n):
        t += rng.expovariate(0.5)
        task, route = rng.choice(["code", "legal"]), rng.choice(["a/x", "b/y", "c/z"])
        if rng.random() < 0.2:
            events.append((t, task, route, round(rng.random(), 2)))
            continue
        ok = rng.random() < 0.8
        event = Outcome(
            ok,
            latency_ms=rng.lognormvariate(6.0, 0.5),
            ttft_ms=rng.lognormvariate(4.0, 0.5) if rng.random() < 0.5 else None,
            cost=rng.random() / 100 if ok else None,
            error=None if ok else rng.choice(["http_503", "timeout_error"]),
        )
        events.append((t, task, route, event))
    return events


def proc() -> tuple[RouteMemory, Clock]:
    clock = Clock()
    return RouteMemory(HALF_LIFE, clock=clock), clock


def play(m: RouteMemory, clock: Clock, events: list[Event]) -> None:
    for t, task, route, event in events:
        clock.now = t
        if isinstance(event, Outcome):
            m.observe(task, route, event)
        else:
            m.feedback(task, route, event)


def same(a: list[RouteRow], b: list[RouteRow]) -> None:
    """Rows equal within float tolerance (sums decayed to the same instant first)."""

    def key(r: RouteRow) -> tuple[str, str]:
        return r["task_class"], r["route"]

    left, right = sorted(a, key=key), sorted(b, key=key)
    assert [key(r) for r in left] == [key(r) for r in right]
    for x, y in zip(left, right, strict=True):
        assert x["ref"] == y["ref"] and x["count"] == y["count"]
        ys: dict[str, object] = dict(y)
        for name, value in x.items():
            if isinstance(value, float):
                assert value == pytest.approx(ys[name], rel=1e-9, abs=1e-12), name
        assert x["errors"] == pytest.approx(y["errors"], rel=1e-9)


def test_merging_two_processes_deltas_equals_one_process_seeing_everything() -> None:
    events = outcomes(1, 400)
    one, clock = proc()
    play(one, clock, events)
    # Two processes, each seeing every other request, interleaved in time.
    (p1, c1), (p2, c2) = proc(), proc()
    play(p1, c1, events[0::2])
    play(p2, c2, events[1::2])
    d1, d2 = p1.drain_deltas(), p2.drain_deltas()
    for order in ((d1, d2), (d2, d1)):
        merged = RouteMemory(HALF_LIFE, clock=clock)
        merged.merge([*order[0], *order[1]])
        same(merged.rows(), one.rows())
        clock.now += HALF_LIFE
        for got, want in zip(merged.snapshot(), one.snapshot(), strict=True):
            assert got.pop("errors") == pytest.approx(want.pop("errors"), abs=1e-4)
            assert got == pytest.approx(want, abs=1e-4)


def test_combine_is_the_same_in_any_grouping_and_order() -> None:
    events = outcomes(2, 300)
    parts = []
    for i in range(3):
        m, c = proc()
        play(m, c, events[i::3])
        parts.append(m.rows())
    a, b, c3 = parts
    left = combine([*combine([*a, *b], HALF_LIFE), *c3], HALF_LIFE)
    right = combine([*a, *combine([*c3, *b], HALF_LIFE)], HALF_LIFE)
    same(left, right)
    same(left, combine([*c3, *a, *b], HALF_LIFE))


def test_drain_returns_what_changed_since_the_last_drain() -> None:
    m, clock = proc()
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0))
    m.feedback("code", "a/x", 1.0)
    first = m.drain_deltas()
    assert [(r["route"], r["count"], r["ok"], r["fb_w"]) for r in first] == [("a/x", 1, 1.0, 1.0)]
    assert m.drain_deltas() == []
    clock.now += HALF_LIFE
    m.observe("code", "b/y", Outcome(False, error="http_503"))
    second = m.drain_deltas()
    assert [(r["route"], r["count"], r["fail"]) for r in second] == [("b/y", 1, 1.0)]
    assert second[0]["errors"] == {"http_503": 1.0}
    # Draining forgets the deltas, not the state.
    s = m.stats("code", "a/x")
    assert s is not None and s.successes == pytest.approx(0.5)
    orjson.dumps(first + second)


def test_a_row_holds_its_sums_at_its_ref() -> None:
    m, clock = proc()
    t0 = clock.now
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0))
    clock.now += HALF_LIFE
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0))
    (row,) = m.drain_deltas()
    assert row["ref"] == t0 + HALF_LIFE
    assert row["ok"] == pytest.approx(1.5)
    assert row["lat_w"] == pytest.approx(1.5)


def test_processes_sharing_a_database_converge_through_load() -> None:
    events = outcomes(3, 600)
    one, c = proc()
    play(one, c, events)
    clocks = [Clock(), Clock()]
    procs = [RouteMemory(HALF_LIFE, clock=k) for k in clocks]
    db: list[RouteRow] = []
    # Each process syncs every 50 of its requests: add its deltas, read all back, load.
    for start in range(0, len(events), 100):
        for i, (p, k) in enumerate(zip(procs, clocks, strict=True)):
            play(p, k, events[start + i : start + 100 : 2])
            db = combine([*db, *p.drain_deltas()], HALF_LIFE)
            p.load(db)
    for p in procs:
        p.load(db)
        same(p.rows(), one.rows())


def test_load_keeps_the_deltas_not_yet_drained() -> None:
    m = RouteMemory(HALF_LIFE, clock=Clock())
    m.observe("code", "a/x", Outcome(True))
    db = combine(m.drain_deltas(), HALF_LIFE)
    m.observe("code", "a/x", Outcome(False))  # after the drain
    m.load(db)
    s = m.stats("code", "a/x")
    assert s is not None and (s.count, s.successes, s.failures) == (2, 1.0, 1.0)
    # ...and they still go out with the next drain.
    assert [r["count"] for r in m.drain_deltas()] == [1]


def test_merge_accepts_database_numbers() -> None:
    # A database hands back Decimals and ints; merge folds them as floats.
    from decimal import Decimal

    m, clock = proc()
    m.observe("code", "a/x", Outcome(True, latency_ms=100.0, cost=0.5))
    (row,) = m.drain_deltas()
    loose = {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in row.items()}
    other = RouteMemory(HALF_LIFE, clock=clock)
    other.merge([loose])  # type: ignore[list-item]  # what a database returns, on purpose
    s = other.stats("code", "a/x")
    assert s is not None and s.successes == pytest.approx(1.0) and s.cost == pytest.approx(0.5)
