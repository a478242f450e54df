"""The spend ledger: one row per request that cost something, written in batches.

Rows are appended in memory on the response path and written by a
background task every `FLUSH_S` (group commit), so the request path never
waits on the database; a report or a budget change flushes first, and
shutdown flushes what is left. Reports aggregate the ledger by key, user,
team, project, model or UTC day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, cast, func, insert, select

from aicp.storage.db import Database
from aicp.storage.schema import MICROS
from aicp.storage.schema import spend as spend_table

log = logging.getLogger("aicp.spend")

FLUSH_S = 0.25
MAX_BATCH = 1000

#: Report groupings -> ledger column.
GROUPS = {
    "key": "key_id",
    "user": "user_id",
    "team": "team_id",
    "project": "project_id",
    "model": "model",
    "day": "day",
}

#: Budget scope -> the ledger column that scope is counted under.
SCOPE_COLUMNS = {"key": "key_id", "user": "user_id", "team": "team_id", "project": "project_id"}


@dataclass(slots=True)
class SpendRow:
    request_id: str
    key_id: str | None
    user_id: str | None
    team_id: str | None
    project_id: str | None
    model: str
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_micros: int
    created_at: float


_FIELDS = tuple(SpendRow.__dataclass_fields__)
_INSERT = f"INSERT INTO spend ({', '.join(_FIELDS)}) VALUES ({', '.join(':' + f for f in _FIELDS)})"


def _astuple(row: SpendRow) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _FIELDS)


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="aicp-spend-ledger")

    def append(self, row: SpendRow) -> None:
        # A tuple's fields by hand: dataclasses.asdict deep-copies and costs ~10 µs.
        self._rows.append(dict(zip(_FIELDS, _astuple(row), strict=True)))
        if len(self._rows) >= MAX_BATCH:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                # Kept in memory and tried again on the next tick.
                log.exception("could not write the spend ledger")

    async def flush(self) -> None:
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return
            try:
                inline = self.db.inline
                if inline is not None:
                    # SQLite: the hot-path writer the receipts use (storage/inline.py), so
                    # the two never wait on each other's write lock.
                    await inline.transaction(lambda conn: conn.executemany(_INSERT, rows))
                else:
                    async with self.db.begin() as conn:
                        await conn.execute(insert(spend_table), rows)
            except BaseException:
                self._rows[:0] = rows
                raise

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def window_spend(self, scope: str, scope_id: str, since: float) -> int:
        """Micro-dollars spent under a budget scope since `since` (its window start)."""
        column = spend_table.c[SCOPE_COLUMNS[scope]]
        stmt = select(func.coalesce(func.sum(spend_table.c.cost_micros), 0)).where(
            column == scope_id, spend_table.c.created_at >= since
        )
        async with self.db.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def report(
        self,
        by: str,
        since: float | None = None,
        until: float | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Spend grouped by `by` (see GROUPS), newest day or largest cost first."""
        await self.flush()
        t = spend_table
        if by == "day":
            days = t.c.created_at / 86400
            # SQLite truncates a cast toward zero (times are positive); PostgreSQL rounds.
            group: Any = cast(days, Integer) if self.db.is_sqlite else func.floor(days)
        else:
            group = t.c[GROUPS[by]]
        cost = func.sum(t.c.cost_micros)
        stmt = select(
            group.label("group"),
            func.count().label("requests"),
            func.sum(t.c.prompt_tokens).label("prompt_tokens"),
            func.sum(t.c.completion_tokens).label("completion_tokens"),
            func.sum(t.c.cached_tokens).label("cached_tokens"),
            cost.label("cost_micros"),
        ).group_by(group)
        if since is not None:
            stmt = stmt.where(t.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(t.c.created_at < until)
        if key_id is not None:
            stmt = stmt.where(t.c.key_id == key_id)
        if team_id is not None:
            stmt = stmt.where(t.c.team_id == team_id)
        stmt = stmt.order_by(group) if by == "day" else stmt.order_by(cost.desc(), group)
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out = []
        for row in rows:
            value = row.group
            if by == "day" and value is not None:
                from aicp.accounting.windows import iso

                value = (iso(float(value) * 86400) or "")[:10]
            micros = int(row.cost_micros or 0)
            out.append(
                {
                    by: value,
                    "requests": int(row.requests),
                    "prompt_tokens": int(row.prompt_tokens or 0),
                    "completion_tokens": int(row.completion_tokens or 0),
                    "cached_tokens": int(row.cached_tokens or 0),
                    "cost_micros": micros,
                    "cost_usd": micros / MICROS,
                }
            )
        return out
