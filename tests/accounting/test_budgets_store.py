"""The reservation stores, one suite over every backend: memory, SQLite, PostgreSQL, Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicp.accounting.counters import Hold
from aicp.accounting.spend import SpendRow
from tests.accounting.budget_backends import BACKENDS, Clock, budget_service

pytestmark = pytest.mark.parametrize("backend", BACKENDS)

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


def row(cost: int, at: float, team: str = "t1") -> SpendRow:
    return SpendRow("r", "k1", None, team, None, "m", "p", 1, 1, 0, cost, at)


async def test_reservation_is_all_or_nothing_across_budgets(backend: str, tmp_path: Path) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        big = await sv.set_budget("key", "k1", "daily", 1.0)
        small = await sv.set_budget("team", "t1", "monthly", 0.000250)
        both = sorted([big, small], key=lambda b: b.id)
        holds = [sv.hold(b, T0) for b in both]
        await sv.prime(both, holds)

        first = await sv.counters.reserve(holds, 200)
        assert first.refused is None
        assert first.counters == [(0, 200), (0, 200)]
        second = await sv.counters.reserve(holds, 100)  # 300 > the small budget's 250
        assert second.refused == both.index(small)
        # Nothing was taken from the budget that would have admitted it.
        assert [await sv.counters.read(h) for h in holds] == [(0, 200), (0, 200)]
        assert (await sv.counters.reserve(holds, 50)).refused is None


async def test_settle_replaces_the_reservation_with_the_actual_cost(
    backend: str, tmp_path: Path
) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        b = await sv.set_budget("user", "u1", "weekly", 0.001)
        h = sv.hold(b, T0)
        await sv.prime([b], [h])
        assert (await sv.counters.reserve([h], 700)).refused is None
        assert await sv.counters.settle([h], 700, 300) == [(300, 0)]
        # The released 400 is available again: 300 + 700 = the limit exactly.
        assert (await sv.counters.reserve([h], 700)).refused is None
        assert (await sv.counters.reserve([h], 1)).refused == 0
        await sv.counters.settle([h], 700, 0)  # a failed request releases all of it
        assert await sv.counters.read(h) == (300, 0)


async def test_budget_without_hard_limit_only_counts(backend: str, tmp_path: Path) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        b = await sv.set_budget("project", "p1", "total", None, soft_limit_usd=0.000001)
        h = sv.hold(b, T0)
        assert h.limit is None and h.window == 0.0 and h.ends is None
        await sv.prime([b], [h])
        assert (await sv.counters.reserve([h], 10**9)).refused is None


async def test_concurrent_reservations_never_overshoot(backend: str, tmp_path: Path) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        a = await sv.set_budget("key", "k1", "daily", 0.000100)
        b = await sv.set_budget("team", "t1", "daily", 0.000070)
        budgets = sorted([a, b], key=lambda x: x.id)
        holds = [sv.hold(x, T0) for x in budgets]
        await sv.prime(budgets, holds)
        outcomes = await asyncio.gather(*(sv.counters.reserve(holds, 10) for _ in range(40)))
        assert sum(o.refused is None for o in outcomes) == 7
        assert [await sv.counters.read(h) for h in holds] == [(0, 70), (0, 70)]


async def test_a_window_starts_from_the_ledger_and_rolls_over(backend: str, tmp_path: Path) -> None:
    clock = Clock(T0)
    async with budget_service(backend, tmp_path, clock) as sv:
        # Spend from before the budget existed, this month and last month.
        sv.ledger.append(row(400, T0 - 3600))
        sv.ledger.append(row(900, T0 - 40 * DAY))
        b = await sv.set_budget("team", "t1", "monthly", 0.001)
        h = sv.hold(b, T0)
        assert await sv.counters.read(h) == (400, 0)
        status = await sv.status(b)
        assert status["spent_usd"] == 0.0004
        assert status["resets_at"] == "2025-04-01T00:00:00Z"
        assert status["remaining_usd"] == 0.0006

        clock.now = datetime(2025, 4, 1, 0, 0, 1, tzinfo=UTC).timestamp()
        later = sv.hold(b, clock.now)
        assert later.window != h.window
        await sv.prime([b], [later])
        assert await sv.counters.read(later) == (0, 0)
        assert (await sv.counters.reserve([later], 1000)).refused is None


async def test_windows_are_utc_calendar_windows(backend: str, tmp_path: Path) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        # Friday 2025-03-14 12:00 UTC
        starts = {}
        for period in ("daily", "weekly", "monthly", "total"):
            b = await sv.set_budget("key", "k9", period, 1.0)
            h: Hold = sv.hold(b, T0)
            starts[period] = (h.window, h.ends)

        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).date().isoformat()

        assert [iso(x) for x in starts["daily"] if x] == ["2025-03-14", "2025-03-15"]
        assert [iso(x) for x in starts["weekly"] if x] == ["2025-03-10", "2025-03-17"]
        assert [iso(x) for x in starts["monthly"] if x] == ["2025-03-01", "2025-04-01"]
        assert starts["total"] == (0.0, None)


async def test_budgets_are_listed_changed_and_deleted(backend: str, tmp_path: Path) -> None:
    async with budget_service(backend, tmp_path, Clock(T0)) as sv:
        b = await sv.set_budget("key", "k1", "daily", 1.0)
        same = await sv.set_budget("key", "k1", "daily", 2.0, soft_limit_usd=1.5)
        assert same.id == b.id and same.hard_limit_micros == 2_000_000
        assert same.soft_limit_micros == 1_500_000
        assert [x.id for x in await sv.list_budgets(scope="key")] == [b.id]
        assert sv.by_scope[("key", "k1")][0].hard_limit_micros == 2_000_000
        assert await sv.delete_budget(b.id)
        assert await sv.get_budget(b.id) is None
        assert sv.by_scope == {}
        assert not await sv.delete_budget(b.id)
