"""A budget service per reservation backend, for the budget tests.

memory    counters in process, SQLite ledger (the embedded default)
sqlite    counters in SQLite's budget_counters
postgres  counters in PostgreSQL's budget_counters
redis     counters in Redis (Lua), SQLite ledger
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from aicp.accounting.budgets import BudgetService
from aicp.storage.db import Database
from aicp.storage.migrate import upgrade
from aicp.storage.redis import connect_redis
from tests.backends import (
    POSTGRES_VAR,
    REDIS_VAR,
    flush_redis,
    fresh_postgres_database,
    service_url,
)

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def budget_service(
    backend: str, tmp_path: Path, clock: Callable[[], float] | None = None
) -> AsyncIterator[BudgetService]:
    redis = None
    if backend == "postgres":
        with fresh_postgres_database(service_url(POSTGRES_VAR, "PostgreSQL")) as url:
            db = Database(url)
            async with _service(db, None, "sql", clock) as sv:
                yield sv
        return
    db = Database(f"sqlite:///{tmp_path / 'budgets.db'}")
    if backend == "redis":
        url = service_url(REDIS_VAR, "Redis")
        flush_redis(url)
        redis = await connect_redis(url)
    kind = {"memory": "memory", "sqlite": "sql", "redis": "redis"}[backend]
    try:
        async with _service(db, redis, kind, clock) as sv:
            yield sv
    finally:
        if redis is not None:
            await redis.aclose()


@asynccontextmanager
async def _service(
    db: Database, redis: object, kind: str, clock: Callable[[], float] | None
) -> AsyncIterator[BudgetService]:
    await upgrade(db)
    kwargs = {"clock": clock} if clock is not None else {}
    sv = BudgetService(db, redis, backend=kind, **kwargs)
    await sv.start()
    try:
        yield sv
    finally:
        await sv.aclose()
        await db.aclose()
