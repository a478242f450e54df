"""Live budget counters: the reservation stores, one protocol and its backends.

A reservation takes `amount` micro-dollars from several budgets at once, all
or nothing: every budget must have `spent + reserved + amount <= limit`.
Backends: in process (this module), Redis (a Lua script) and SQL (a
conditional UPDATE per budget inside one transaction); `BACKENDS` names them
by import path so an unused backend is never imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Backend name -> "module:class".
BACKENDS = {
    "memory": "aicp.accounting.counters:MemoryCounters",
    "redis": "aicp.accounting.counters_redis:RedisCounters",
    "sql": "aicp.accounting.counters_sql:SqlCounters",
}


@dataclass(frozen=True, slots=True)
class Hold:
    """One budget's part of a reservation: its current window and hard limit."""

    budget_id: str
    window: float
    #: Hard limit in micro-dollars; None: the budget only counts (a soft limit alone).
    limit: int | None
    #: When the window ends (epoch seconds); None for a total budget.
    ends: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A reservation's result: `refused` is the index of the first budget that said no."""

    refused: int | None
    #: (spent, reserved) per hold: after the reservation, or as found when refused.
    counters: list[tuple[int, int]]


class Counters(Protocol):
    name: str

    async def prime(self, hold: Hold, spent: int) -> None:
        """Create the window's counter with `spent` unless it exists."""
        ...

    async def reserve(self, holds: Sequence[Hold], amount: int) -> Outcome:
        """All or nothing; `holds` come sorted by budget id (a fixed lock order)."""
        ...

    async def settle(
        self, holds: Sequence[Hold], reserved: int, actual: int
    ) -> list[tuple[int, int]]:
        """Release `reserved`, add `actual` to spent; the counters after."""
        ...

    async def read(self, hold: Hold) -> tuple[int, int]:
        """(spent, reserved) of the window; (0, 0) when nothing was counted yet."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """One process: the check and the update run with no await between them."""

    name = "memory"

    def __init__(self) -> None:
        self._counts: dict[tuple[str, float], list[int]] = {}

    async def prime(self, hold: Hold, spent: int) -> None:
        self._counts.setdefault((hold.budget_id, hold.window), [spent, 0])

    async def reserve(self, holds: Sequence[Hold], amount: int) -> Outcome:
        counts = self._counts
        cells = [counts.setdefault((h.budget_id, h.window), [0, 0]) for h in holds]
        for i, (h, cell) in enumerate(zip(holds, cells, strict=True)):
            if h.limit is not None and cell[0] + cell[1] + amount > h.limit:
                return Outcome(i, [(c[0], c[1]) for c in cells])
        for cell in cells:
            cell[1] += amount
        return Outcome(None, [(c[0], c[1]) for c in cells])

    async def settle(
        self, holds: Sequence[Hold], reserved: int, actual: int
    ) -> list[tuple[int, int]]:
        out = []
        for h in holds:
            cell = self._counts.setdefault((h.budget_id, h.window), [0, 0])
            cell[0] += actual
            cell[1] = max(0, cell[1] - reserved)
            out.append((cell[0], cell[1]))
        return out

    async def read(self, hold: Hold) -> tuple[int, int]:
        cell = self._counts.get((hold.budget_id, hold.window))
        return (cell[0], cell[1]) if cell else (0, 0)

    async def aclose(self) -> None:
        return None
