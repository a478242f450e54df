"""Budgets: definitions, the cache of who has one, and the reservation backend.

A budget caps the USD spent by a key, user, team or project in a UTC calendar
window (daily, weekly, monthly or total). `BudgetStage` (stages.py) reserves a
request's maximum cost against every budget of its principal before the call;
`SettleStage` settles the actual cost after. Which store holds the live
counters: Redis when configured, else the database when it is PostgreSQL
(several processes share it), else this process, with the ledger as the
durable record (a window's counter starts from the ledger's sum).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from aicp.accounting.counters import BACKENDS, Counters, Hold
from aicp.accounting.spend import Ledger
from aicp.accounting.windows import PERIODS, iso, window
from aicp.errors import InvalidRequest
from aicp.plane.exchange import Principal
from aicp.storage.db import Database
from aicp.storage.schema import MICROS, state_versions
from aicp.storage.schema import budgets as budgets_table

log = logging.getLogger("aicp.budgets")

SCOPES = ("key", "user", "team", "project")

#: How often a process checks whether another changed the budgets.
REFRESH_S = 1.0


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    scope: str
    scope_id: str
    period: str
    hard_limit_micros: int | None
    soft_limit_micros: int | None
    created_at: float

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "period": self.period,
            "hard_limit_usd": _usd(self.hard_limit_micros),
            "soft_limit_usd": _usd(self.soft_limit_micros),
            "created_at": self.created_at,
        }


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / MICROS


def _micros(usd: float | None, what: str) -> int | None:
    if usd is None:
        return None
    if not isinstance(usd, int | float) or isinstance(usd, bool) or not usd >= 0:
        raise InvalidRequest(f"{what} must be a number of USD >= 0", param=what)
    if usd > 1e12:
        raise InvalidRequest(f"{what} is too large", param=what)
    return round(usd * MICROS)


def choose_backend(db: Database, redis: Any) -> str:
    if redis is not None:
        return "redis"
    return "memory" if db.is_sqlite else "sql"


def make_counters(backend: str, db: Database, redis: Any) -> Counters:
    module_name, _, attr = BACKENDS[backend].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    arg = {"memory": (), "redis": (redis,), "sql": (db,)}[backend]
    counters: Counters = cls(*arg)
    return counters


class BudgetService:
    """Budget definitions (the `budgets` table), cached in process, and their counters."""

    def __init__(
        self,
        db: Database,
        redis: Any,
        *,
        backend: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.redis = redis
        self.backend = backend or choose_backend(db, redis)
        self.counters = make_counters(self.backend, db, redis)
        self.ledger = Ledger(db)
        self.clock = clock
        #: (scope, scope_id) -> its budgets; empty when nobody has one (the fast path).
        self.by_scope: dict[tuple[str, str], tuple[Budget, ...]] = {}
        self._primed: set[tuple[str, float]] = set()
        self._alerted: set[tuple[str, float]] = set()
        self._version = -1
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await self.reload()
        self.ledger.start()
        self._task = asyncio.create_task(self._watch(), name="aicp-budgets-watch")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.ledger.aclose()
        await self.counters.aclose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                if await self._read_version() != self._version:
                    await self.reload()
            except Exception:
                log.exception("could not refresh the budgets")

    async def _read_version(self) -> int:
        stmt = select(state_versions.c.version).where(state_versions.c.name == "budgets")
        async with self.db.connect() as conn:
            value = (await conn.execute(stmt)).scalar_one_or_none()
        return int(value or 0)

    async def _bump_version(self) -> None:
        t = state_versions
        async with self.db.begin() as conn:
            done = await conn.execute(
                update(t).where(t.c.name == "budgets").values(version=t.c.version + 1)
            )
            if done.rowcount == 0:
                with contextlib.suppress(IntegrityError):
                    async with conn.begin_nested():
                        await conn.execute(insert(t).values(name="budgets", version=1))

    async def reload(self) -> None:
        version = await self._read_version()
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(budgets_table))).all()
        by_scope: dict[tuple[str, str], list[Budget]] = {}
        for row in rows:
            b = _budget(row)
            by_scope.setdefault((b.scope, b.scope_id), []).append(b)
        self.by_scope = {k: tuple(sorted(v, key=lambda b: b.id)) for k, v in by_scope.items()}
        self._version = version

    # --- the hot path -----------------------------------------------------------

    def applicable(self, p: Principal) -> list[Budget]:
        """Every budget that applies to `p`, sorted by id (the counters' lock order)."""
        by_scope = self.by_scope
        if not by_scope:
            return []
        found: list[Budget] = []
        for scope, sid in (
            ("key", p.key_id),
            ("user", p.user_id),
            ("team", p.team_id),
            ("project", p.project_id),
        ):
            if sid is not None:
                found.extend(by_scope.get((scope, sid), ()))
        if len(found) > 1:
            found.sort(key=lambda b: b.id)
        return found

    def hold(self, b: Budget, now: float) -> Hold:
        start, ends = window(b.period, now)
        return Hold(b.id, start, b.hard_limit_micros, ends)

    async def prime(self, budgets: list[Budget], holds: list[Hold]) -> None:
        """Start each window's counter from the ledger, once per window per process."""
        for b, h in zip(budgets, holds, strict=True):
            key = (h.budget_id, h.window)
            if key in self._primed:
                continue
            spent = await self.ledger.window_spend(b.scope, b.scope_id, h.window)
            await self.counters.prime(h, spent)
            self._primed.add(key)

    def first_alert(self, hold: Hold) -> bool:
        key = (hold.budget_id, hold.window)
        if key in self._alerted:
            return False
        self._alerted.add(key)
        return True

    # --- administration ---------------------------------------------------------------

    async def set_budget(
        self,
        scope: str,
        scope_id: str,
        period: str,
        hard_limit_usd: float | None,
        soft_limit_usd: float | None = None,
    ) -> Budget:
        """Create the budget of (scope, scope_id, period), or change its limits."""
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}", param="scope")
        if period not in PERIODS:
            raise InvalidRequest(f"period must be one of {', '.join(PERIODS)}", param="period")
        if not isinstance(scope_id, str) or not 0 < len(scope_id) <= 64:
            raise InvalidRequest("scope_id must be 1 to 64 characters", param="scope_id")
        hard = _micros(hard_limit_usd, "hard_limit_usd")
        soft = _micros(soft_limit_usd, "soft_limit_usd")
        if hard is None and soft is None:
            raise InvalidRequest("a budget needs a hard limit, a soft limit or both")
        t = budgets_table
        values = {"hard_limit_micros": hard, "soft_limit_micros": soft}
        where = (t.c.scope == scope, t.c.scope_id == scope_id, t.c.period == period)
        async with self.db.begin() as conn:
            done = await conn.execute(update(t).where(*where).values(**values))
            if done.rowcount == 0:
                await conn.execute(
                    insert(t).values(
                        id="bud_" + secrets.token_hex(8),
                        scope=scope,
                        scope_id=scope_id,
                        period=period,
                        created_at=self.clock(),
                        **values,
                    )
                )
            row = (await conn.execute(select(t).where(*where))).one()
        budget = _budget(row)
        # Spend so far in the current window counts against a new budget.
        await self.ledger.flush()
        hold = self.hold(budget, self.clock())
        await self.prime([budget], [hold])
        await self._changed()
        return budget

    async def get_budget(self, budget_id: str) -> Budget | None:
        t = budgets_table
        async with self.db.connect() as conn:
            row = (await conn.execute(select(t).where(t.c.id == budget_id))).first()
        return None if row is None else _budget(row)

    async def list_budgets(
        self, scope: str | None = None, scope_id: str | None = None
    ) -> list[Budget]:
        t = budgets_table
        stmt = select(t).order_by(t.c.scope, t.c.scope_id, t.c.period)
        if scope is not None:
            stmt = stmt.where(t.c.scope == scope)
        if scope_id is not None:
            stmt = stmt.where(t.c.scope_id == scope_id)
        async with self.db.connect() as conn:
            return [_budget(r) for r in (await conn.execute(stmt)).all()]

    async def delete_budget(self, budget_id: str) -> bool:
        t = budgets_table
        async with self.db.begin() as conn:
            done = await conn.execute(delete(t).where(t.c.id == budget_id))
        if done.rowcount:
            await self._changed()
        return bool(done.rowcount)

    async def status(self, budget: Budget) -> dict[str, Any]:
        """The budget with its current window: spent, reserved, remaining, reset."""
        now = self.clock()
        hold = self.hold(budget, now)
        if (hold.budget_id, hold.window) not in self._primed:
            await self.ledger.flush()
            await self.prime([budget], [hold])
        spent, reserved = await self.counters.read(hold)
        hard = budget.hard_limit_micros
        return {
            **budget.view(),
            "window_start": iso(hold.window),
            "resets_at": iso(hold.ends),
            "spent_usd": spent / MICROS,
            "reserved_usd": reserved / MICROS,
            "remaining_usd": None if hard is None else max(0, hard - spent - reserved) / MICROS,
        }

    async def _changed(self) -> None:
        await self._bump_version()
        await self.reload()


def _budget(row: Any) -> Budget:
    return Budget(
        row.id,
        row.scope,
        row.scope_id,
        row.period,
        row.hard_limit_micros,
        row.soft_limit_micros,
        row.created_at,
    )


# The stages live in their own module; state.py imports them from here.
from aicp.accounting.budget_stages import BudgetStage, SettleStage  # noqa: E402

__all__ = ["Budget", "BudgetService", "BudgetStage", "SettleStage"]
