"""The policy set the gateway runs with: loaded at start, watched, swapped on change.

A directory that fails to load at start-up is a configuration error (the
gateway does not start with a policy set it cannot read); a change that fails
later keeps the previous set active, logs the error naming the file and emits
`config.reloaded` with `ok: false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from aicp.config import PolicySettings
from aicp.observability.events import EventBus
from aicp.policy.engine import PolicyEngine, PolicySet
from aicp.policy.reload import PolicyWatcher

log = logging.getLogger("aicp.policy")


class PolicyService:
    def __init__(self, settings: PolicySettings, events: EventBus) -> None:
        self.settings = settings
        self.events = events
        self.directory = Path(settings.dir) if settings.dir else None
        self.engine = PolicyEngine(PolicySet.load(self.directory, pack=settings.pack))
        self._task: asyncio.Task[None] | None = None
        self.watcher: PolicyWatcher | None = None
        if self.directory is not None and settings.reload_s > 0:
            self.watcher = PolicyWatcher(
                self.engine,
                self.directory,
                pack=settings.pack,
                interval_s=settings.reload_s,
                on_reload=self._reloaded,
                on_error=self._failed,
            )
        ids = sorted(self.engine.policies.ids)
        log.info("policy: %d policies active (%s)", len(ids), ", ".join(ids))

    def start(self) -> None:
        if self.watcher is not None:
            self._task = asyncio.get_running_loop().create_task(self.watcher.run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _reloaded(self, policies: PolicySet) -> None:
        ids = sorted(policies.ids)
        log.info("policy: reloaded %s: %d policies active", self.directory, len(ids))
        if self.events.wants("config.reloaded"):
            self.events.emit("config.reloaded", {"what": "policy", "ok": True, "policies": ids})

    def _failed(self, message: str) -> None:
        log.error("policy: the change was rejected, the previous set stays active: %s", message)
        if self.events.wants("config.reloaded"):
            self.events.emit("config.reloaded", {"what": "policy", "ok": False, "error": message})
