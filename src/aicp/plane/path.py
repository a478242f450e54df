"""The request path: the ordered list of stages, split where the response starts.

`request` stages run before anything is sent to the client (they may still
fail the request cleanly); `response` stages run after the reply, or after
the last chunk of a stream. `run` and `finish` bracket every request, so the
path is also where a request's log context is bound, its trace spans start and
end, and the in-flight and active-stream gauges are counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aicp.observability.logging import bind_request
from aicp.plane.exchange import Exchange
from aicp.plane.stages import Passthrough, Stage

if TYPE_CHECKING:
    from aicp.observability.tracing import Tracing


class Path:
    def __init__(
        self,
        request: Sequence[Stage],
        response: Sequence[Stage],
        tracing: Tracing | None = None,
    ) -> None:
        self.request = tuple(request)
        self.response = tuple(response)
        # What runs: a placeholder decides nothing, so it is not even awaited (it keeps
        # its place in `request`/`response` and `names()` for when it is built).
        self._request = tuple(s for s in self.request if not isinstance(s, Passthrough))
        self._response = tuple(s for s in self.response if not isinstance(s, Passthrough))
        self.tracing = tracing
        #: Requests between `run` and the end of `finish`.
        self.in_flight = 0
        #: Streams between the end of `run` and `finish`, by id(exchange).
        self._streams: set[int] = set()

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    async def run(self, exchange: Exchange) -> None:
        bind_request(exchange)
        self.in_flight += 1
        tracing = self.tracing
        if tracing is None:
            await _timed(self._request, exchange)
        else:
            tracing.start_request(exchange)
            await _traced(self._request, exchange, tracing)
        if exchange.upstream is not None:
            self._streams.add(id(exchange))

    async def finish(self, exchange: Exchange) -> None:
        """The response stages; also for a request that failed before `run` (a bad body)."""
        ran = bool(exchange.stage_times)
        if not ran:
            bind_request(exchange)
        self._streams.discard(id(exchange))
        tracing = self.tracing
        try:
            if tracing is None:
                await _timed(self._response, exchange)
            else:
                tracing.start_request(exchange)  # a no-op when `run` started it
                try:
                    await _traced(self._response, exchange, tracing)
                finally:
                    tracing.end_request(exchange)
        finally:
            if ran:
                self.in_flight -= 1

    def names(self) -> list[str]:
        return [s.name for s in (*self.request, *self.response)]


async def _timed(stages: tuple[Stage, ...], ex: Exchange) -> None:
    # Two clock reads a stage (~0.1 us each): the receipt's timeline is built from
    # these, so nothing else on the path needs to time itself.
    clock = time.perf_counter
    times = ex.stage_times
    for stage in stages:
        start = clock()
        try:
            await stage(ex)
        finally:
            times.append((stage.name, start, clock()))


async def _traced(stages: tuple[Stage, ...], ex: Exchange, tracing: Tracing) -> None:
    """`_timed` with a span around each stage (its own loop: the untraced one pays nothing)."""
    clock = time.perf_counter
    times = ex.stage_times
    for stage in stages:
        span = tracing.start_stage(stage.name)
        error: BaseException | None = None
        start = clock()
        try:
            await stage(ex)
        except BaseException as exc:
            error = exc
            raise
        finally:
            times.append((stage.name, start, clock()))
            tracing.end_stage(span, error)
