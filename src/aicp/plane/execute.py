"""Stage 9, execute: attempts along the route's chain inside one deadline.

For each deployment in the chain (skipping those whose breaker is open or
that are at their limits) we try, retrying retryable failures with backoff
under the retry budget, then fall back to the next deployment. A stream
counts as delivered once its first item arrived; we pull that item *here*,
before the response is committed to the client, so a failure up to that
point can still fall back (Envoy: retries are impossible once the response
has started; gRPC A6: a call is committed once response headers arrive).

An attempt after a failure is announced first: `route.retry` when it goes to
the same deployment again, `route.fallback` when it moves on down the chain.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from aicp.config import ReliabilitySettings
from aicp.errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for, error_data
from aicp.plane.exchange import Attempt, Exchange
from aicp.protocol.tokens import estimate_request_tokens
from aicp.providers.base import Call, Canonical, Reply, Timeouts, Usage
from aicp.reliability.retry import RetryBudget, backoff
from aicp.routing.router import Deployment

if TYPE_CHECKING:
    from aicp.observability.tracing import Tracing


class Execute:
    name = "execute"

    def __init__(
        self,
        settings: ReliabilitySettings,
        budget: RetryBudget,
        events: EventBus | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.events = events or EventBus()
        #: A CLIENT span per attempt, its context sent upstream as `traceparent`.
        self.tracing = tracing

    async def __call__(self, ex: Exchange) -> None:
        if ex.cached is not None:  # the recall stage answered it
            return
        assert ex.route is not None, "the route stage runs before execute"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.deadline_s
        budget = self.budget
        budget.active += 1
        try:
            await self._run(ex, deadline, loop)
        finally:
            budget.active -= 1

    async def _run(self, ex: Exchange, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        assert ex.route is not None
        s = self.settings
        budget = self.budget
        last: UpstreamError | None = None
        failed: Deployment | None = None  # where `last` happened
        first = True
        # Every attempt after the first holds a retry-budget slot from the moment it is
        # scheduled until it ends, its backoff included, as Envoy counts retries; else a
        # burst of failures that all back off at once would each find the budget free.
        slot = False
        try:
            for dep in ex.route.chain:
                if not dep.health.has_capacity():
                    ex.trace.append(("execute", {"skipped": dep.key, "reason": "at its limits"}))
                    continue
                per_dep = 0
                while True:
                    if not first and not slot:
                        if not budget.try_acquire():
                            ex.trace.append(("execute", {"stopped": "retry budget exhausted"}))
                            raise last or UpstreamUnavailable("retry budget exhausted")
                        slot = True
                    # After the budget: allow() reserves a half-open probe, which must not leak.
                    if not dep.health.breaker.allow():
                        ex.trace.append(("execute", {"skipped": dep.key, "reason": "breaker open"}))
                        break
                    first = False
                    if failed is not None:
                        self._announce(ex, failed, dep, last)
                    try:
                        await self._attempt(ex, dep, deadline, loop)
                        return
                    except UpstreamError as err:
                        last, failed = err, dep
                        if not err.retryable:
                            raise
                    finally:
                        if slot:
                            budget.release()
                            slot = False
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise UpstreamTimeout(
                            "the request deadline passed", code="deadline"
                        ) from last
                    if per_dep >= s.max_retries:
                        break
                    delay = backoff(per_dep, s.backoff_base_s, s.backoff_max_s)
                    floor = getattr(last, "retry_after", None)
                    if floor is not None:
                        delay = max(delay, floor)
                        if delay >= remaining:
                            raise _with_retry_after(last, floor)
                    if not budget.try_acquire():
                        ex.trace.append(("execute", {"stopped": "retry budget exhausted"}))
                        raise last
                    slot = True
                    per_dep += 1
                    await asyncio.sleep(min(delay, remaining))
        finally:
            if slot:
                budget.release()
        if last is not None:
            raise last
        waits = [w for d in ex.route.chain if (w := d.health.breaker.reopens_in()) is not None]
        headers = {"retry-after": str(max(1, math.ceil(min(waits))))} if waits else None
        raise UpstreamUnavailable(
            "no deployment of this model is available: every breaker is open or at its limits",
            status=503,
            headers=headers,
        )

    def _announce(
        self, ex: Exchange, failed: Deployment, dep: Deployment, err: UpstreamError | None
    ) -> None:
        kind = "route.retry" if failed is dep else "route.fallback"
        if not self.events.wants(kind):
            return
        data = {
            "from": failed.key,
            "to": dep.key,
            "attempt": len(ex.attempts) + 1,
            "error": None if err is None else error_data(err),
        }
        emit_for(self.events, kind, ex, data)

    async def _attempt(
        self, ex: Exchange, dep: Deployment, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        s = self.settings
        remaining = deadline - loop.time()
        timeouts = Timeouts(
            connect=min(s.connect_timeout_s, remaining),
            first_byte=min(s.first_byte_timeout_s, remaining),
            idle=s.idle_timeout_s,
        )
        if ex.canonical is None:
            ex.canonical = Canonical(ex.protocol, ex.body)
        tracing = self.tracing
        span = None
        headers = ex.headers
        if tracing is not None:
            span, headers = tracing.start_attempt(ex, dep)
        call = Call(ex.protocol, ex.operation, ex.body, dep.model, headers, timeouts, ex.stream)
        call.canonical = ex.canonical
        attempt = Attempt(dep.provider.name, dep.key, dep.model)
        ex.attempts.append(attempt)
        health = dep.health
        health.start()
        started = time.perf_counter()
        ok = False
        counts = True
        try:
            async with asyncio.timeout(remaining):
                if ex.operation == "embeddings":
                    ex.reply = await dep.provider.embed(call)
                elif ex.operation == "count_tokens":
                    ex.reply = await _count_tokens(dep, call)
                elif ex.stream:
                    stream = await dep.provider.stream(call)
                    chunks = aiter(stream)
                    try:
                        async with asyncio.timeout(timeouts.first_byte):
                            ex.first = await anext(chunks)
                    except StopAsyncIteration:
                        ex.first = None
                    except BaseException:
                        await stream.aclose()
                        raise
                    ex.upstream, ex.chunks = stream, chunks
                    # A stream's health verdict comes when it ends (api/gateway.py):
                    # one that dies after its first chunk is a failure of this deployment.
                    counts = False
                else:
                    ex.reply = await dep.provider.complete(call)
            ok = True
            attempt.status = 200
            ex.served = dep
        except TimeoutError as exc:
            attempt.error = "timeout"
            raise UpstreamTimeout("the upstream did not answer in time", code="first_byte") from exc
        except UpstreamError as err:
            attempt.status = err.status
            attempt.error = err.message
            # A client error says nothing about the deployment's health.
            counts = err.retryable
            raise
        except InvalidRequest:
            # A body this provider's protocol cannot express (found while translating).
            counts = False
            raise
        except asyncio.CancelledError:
            # Nor does a request cancelled from outside; it must not use up a probe either.
            attempt.error = "cancelled"
            counts = False
            raise
        finally:
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            health.finish(ok, attempt.latency_ms, counts)
            if span is not None:
                assert tracing is not None
                tracing.end_attempt(span, ex, attempt, ok)


async def _count_tokens(dep: Deployment, call: Call) -> Reply:
    counted = await dep.provider.count_tokens(call)
    n = counted if counted is not None else estimate_request_tokens(call.body)
    return Reply(call.ingress, {"input_tokens": n}, Usage(prompt_tokens=n))


def _with_retry_after(err: UpstreamError | None, seconds: float) -> UpstreamError:
    assert isinstance(err, UpstreamStatusError)
    err.headers = {**err.headers, "retry-after": str(max(1, math.ceil(seconds)))}
    return err
