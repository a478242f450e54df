"""Budget counters in the database (`budget_counters`): PostgreSQL or SQLite.

A reservation is one transaction with one conditional UPDATE per budget
(`spent + reserved + amount <= limit`); the first that matches no row rolls
the whole transaction back. Rows are taken in budget-id order, so two
reservations never wait on each other in opposite orders (no deadlock).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, select, update

from aicp.accounting.counters import Hold, Outcome
from aicp.storage.db import Database, upsert_insert
from aicp.storage.schema import budget_counters as bc


class _Refused(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


class SqlCounters:
    name = "sql"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = upsert_insert(db.dialect)

    async def prime(self, hold: Hold, spent: int) -> None:
        stmt = self._insert(bc).values(
            budget_id=hold.budget_id,
            window_start=hold.window,
            spent_micros=spent,
            reserved_micros=0,
        )
        async with self.db.begin() as conn:
            await conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["budget_id", "window_start"])
            )

    async def reserve(self, holds: Sequence[Hold], amount: int) -> Outcome:
        after: list[tuple[int, int]] = []
        try:
            async with self.db.begin() as conn:
                for i, h in enumerate(holds):
                    stmt = update(bc).where(
                        bc.c.budget_id == h.budget_id, bc.c.window_start == h.window
                    )
                    if h.limit is not None:
                        total = bc.c.spent_micros + bc.c.reserved_micros + amount
                        stmt = stmt.where(total <= h.limit)
                    stmt = stmt.values(reserved_micros=bc.c.reserved_micros + amount).returning(
                        bc.c.spent_micros, bc.c.reserved_micros
                    )
                    row = (await conn.execute(stmt)).first()
                    if row is None:
                        raise _Refused(i)
                    after.append((int(row[0]), int(row[1])))
        except _Refused as refusal:
            return Outcome(refusal.index, [await self.read(h) for h in holds])
        return Outcome(None, after)

    async def settle(
        self, holds: Sequence[Hold], reserved: int, actual: int
    ) -> list[tuple[int, int]]:
        out = []
        async with self.db.begin() as conn:
            for h in holds:
                left = bc.c.reserved_micros - reserved
                # Never below zero, whatever a late or repeated settlement does.
                floor = case((left < 0, 0), else_=left)
                stmt = (
                    update(bc)
                    .where(bc.c.budget_id == h.budget_id, bc.c.window_start == h.window)
                    .values(
                        spent_micros=bc.c.spent_micros + actual,
                        reserved_micros=floor,
                    )
                    .returning(bc.c.spent_micros, bc.c.reserved_micros)
                )
                row = (await conn.execute(stmt)).first()
                out.append((0, 0) if row is None else (int(row[0]), int(row[1])))
        return out

    async def read(self, hold: Hold) -> tuple[int, int]:
        stmt = select(bc.c.spent_micros, bc.c.reserved_micros).where(
            bc.c.budget_id == hold.budget_id, bc.c.window_start == hold.window
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def aclose(self) -> None:
        return None
