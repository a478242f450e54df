"""A background task that calls one coroutine function every few seconds: the shape of
every "sync with the database" loop (caches, route memory)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """`await fn()` every `interval_s` once started; a failure is logged and the next
    round tries again. `stop()` cancels the task and waits for it."""

    def __init__(
        self, name: str, interval_s: float, fn: Callable[[], Awaitable[None]], log: logging.Logger
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self.log = log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.fn()
            except Exception:
                self.log.exception("%s failed", self.name)
