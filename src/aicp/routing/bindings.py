"""The gateway side of the model registry: aliases that registered models drive.

`pipeline/registry.py` writes one `model_bindings` row per registered model
(its gateway alias, production version, target and parameters) when a
version is promoted or rolled back. Every gateway process reads the table
every `interval_s` (default 0.5 s, so a promotion takes effect everywhere
within a second) and applies it to its router in one step; the process that
served the promotion applies it at once.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from aicp.routing.router import Binding, Router
from aicp.storage.db import Database
from aicp.storage.periodic import Periodic
from aicp.storage.schema import model_bindings

log = logging.getLogger("aicp.registry")


class BindingSync:
    def __init__(self, db: Database, router: Router, interval_s: float = 0.5) -> None:
        self.db = db
        self.router = router
        self._seen: tuple[tuple[str, str, str, float], ...] | None = None
        self._task = Periodic("aicp-model-bindings", interval_s, self.sync, log)
        #: What the last application left out, for the health view and tests.
        self.problems: list[str] = []

    async def start(self) -> None:
        await self.sync()
        self._task.start()

    async def aclose(self) -> None:
        await self._task.stop()

    async def sync(self) -> None:
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(model_bindings))).mappings().all()
        seen = tuple(
            sorted(
                (r["alias"], r["version"] or "", r["target"] or "", r["updated_at"]) for r in rows
            )
        )
        if seen == self._seen:
            return
        self._seen = seen
        found = {
            r["alias"]: Binding(r["registered_model"], r["version"], r["target"], r["params"] or {})
            for r in rows
            if r["version"] and r["target"]
        }
        self.problems = self.router.bind(found)
        for problem in self.problems:
            log.warning("model registry binding not applied: %s", problem)
        log.info("model registry bindings applied: %s", sorted(found))
