"""The request path: the ordered list of stages, split where the response starts.

`request` stages run before anything is sent to the client (they may still
fail the request cleanly); `response` stages run after the reply, or after
the last chunk of a stream.
"""

from __future__ import annotations

from collections.abc import Sequence

from aicp.plane.exchange import Exchange
from aicp.plane.stages import Stage


class Path:
    def __init__(self, request: Sequence[Stage], response: Sequence[Stage]) -> None:
        self.request = tuple(request)
        self.response = tuple(response)

    async def run(self, exchange: Exchange) -> None:
        for stage in self.request:
            await stage(exchange)

    async def finish(self, exchange: Exchange) -> None:
        for stage in self.response:
            await stage(exchange)

    def names(self) -> list[str]:
        return [s.name for s in (*self.request, *self.response)]
