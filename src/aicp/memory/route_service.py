"""Route memory in the gateway: outcomes observed after every request, shared with
the other processes through the `route_memory` table, read by the learned strategy.

Each process owns its rows (`origin`): every `learning.sync_s` it folds what it
saw since the last sync into its own rows, writes those, and loads the sum of
every process's rows, so processes on one database converge without ever
writing the same row (memory/routes.py says why the sums add).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from sqlalchemy import delete, insert, select

from aicp.memory.routes import Outcome, RouteMemory, RouteRow, combine
from aicp.memory.settings import LearningSettings
from aicp.observability.events import new_origin
from aicp.plane.exchange import Exchange
from aicp.routing.learned import LearnedSettings, LearnedStrategy, Weights
from aicp.storage.db import Database
from aicp.storage.periodic import Periodic
from aicp.storage.schema import route_memory

log = logging.getLogger("aicp.learning")


class RouteService:
    def __init__(self, db: Database, settings: LearningSettings) -> None:
        self.db = db
        self.settings = settings
        self.memory = RouteMemory(half_life_s=settings.half_life_s)
        learned = LearnedSettings(weights=Weights.from_mapping(settings.weights))
        self.strategy = LearnedStrategy(self.memory, learned)
        self.origin = new_origin()
        self._own: dict[tuple[str, str], RouteRow] = {}
        self._sync = Periodic("aicp-route-memory-sync", settings.sync_s, self.sync, log)

    async def start(self) -> None:
        await self._read()
        self._sync.start()

    async def aclose(self) -> None:
        await self._sync.stop()
        with contextlib.suppress(Exception):
            await self.sync()

    async def sync(self) -> None:
        deltas = self.memory.drain_deltas()
        if deltas:
            touched = {(r["task_class"], r["route"]) for r in deltas}
            rows = [*(self._own[k] for k in touched if k in self._own), *deltas]
            for row in combine(rows, self.memory.half_life_s):
                self._own[(row["task_class"], row["route"])] = row
            now = time.time()
            t = route_memory.c
            async with self.db.begin() as conn:
                for key in touched:
                    row = self._own[key]
                    await conn.execute(
                        delete(route_memory).where(
                            t.origin == self.origin, t.task_class == key[0], t.route == key[1]
                        )
                    )
                    await conn.execute(
                        insert(route_memory).values(
                            origin=self.origin,
                            task_class=key[0][:64],
                            route=key[1][:200],
                            data=dict(row),
                            updated_at=now,
                        )
                    )
        await self._read()

    async def _read(self) -> None:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(route_memory.c.data))).all()
        shared: list[RouteRow] = [r.data for r in rows]
        self.memory.load(combine(shared, self.memory.half_life_s))

    # --- the request path ---------------------------------------------------------

    def observe(self, ex: Exchange) -> None:
        """Every attempt of a request: the served one with its latency, TTFT and cost."""
        served = ex.served
        task = ex.task_class
        for a in ex.attempts:
            ok = a.error is None and (a.status is None or a.status < 400)
            is_served = served is not None and a.deployment == served.key and ok
            if is_served and ex.error is not None and ex.upstream is not None:
                ok = False  # the stream failed after it started
            outcome = Outcome(
                ok=ok,
                latency_ms=a.latency_ms if ok else None,
                ttft_ms=ex.ttft_ms if is_served and ok else None,
                cost=ex.cost if is_served else None,
                error=None if ok else _error_type(a.status, a.error),
            )
            self.memory.observe(task, a.deployment, outcome)

    def feedback(self, task_class: str, route: str, score: float) -> None:
        self.memory.feedback(task_class, route, score)

    def snapshot(self, task_class: str | None = None) -> list[Any]:
        return self.memory.snapshot(task_class)


def _error_type(status: int | None, error: str | None) -> str:
    if status:
        return f"http_{status}"
    text = (error or "").lower()
    return "timeout" if "timed out" in text or "timeout" in text else "connection"
