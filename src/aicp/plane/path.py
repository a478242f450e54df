"""The request path: the ordered list of stages, split where the response starts.

`request` stages run before anything is sent to the client (they may still
fail the request cleanly); `response` stages run after the reply, or after
the last chunk of a stream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aicp.plane.exchange import Exchange
from aicp.plane.stages import Stage


class Path:
    def __init__(self, request: Sequence[Stage], response: Sequence[Stage]) -> None:
        self.request = tuple(request)
        self.response = tuple(response)

    async def run(self, exchange: Exchange) -> None:
        await _timed(self.request, exchange)

    async def finish(self, exchange: Exchange) -> None:
        await _timed(self.response, exchange)

    def names(self) -> list[str]:
        return [s.name for s in (*self.request, *self.response)]


async def _timed(stages: tuple[Stage, ...], ex: Exchange) -> None:
    # Two clock reads a stage (~0.1 us each): the receipt's timeline and the trace
    # spans are built from these, so nothing else on the path needs to time itself.
    clock = time.perf_counter
    times = ex.stage_times
    for stage in stages:
        start = clock()
        try:
            await stage(ex)
        finally:
            times.append((stage.name, start, clock()))
