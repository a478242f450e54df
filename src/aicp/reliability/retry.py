"""Retry timing and the retry budget.

Backoff is gRPC A6's exponential backoff with full jitter: the n-th retry
waits a uniform random time in [0, min(max, base * 2**n)] (gRPC A6
"Exponential backoff", AWS "full jitter"). A server's `retry-after-ms` /
`Retry-After` is a floor on that wait, as gRPC A6 treats
`grpc-retry-pushback-ms`; when the floor lands past the request's deadline
we stop and hand the client the upstream's 429 and its Retry-After.

The retry budget is Envoy's (`RetryBudget` in cluster/circuit_breaker.proto):
retries in flight may not exceed `budget_percent` of active requests, with
`min_retry_concurrency` as a floor, so an outage cannot multiply the load.
"""

from __future__ import annotations

import random

from aicp.config import ReliabilitySettings


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter wait before retry number `attempt` (0-based)."""
    draw = rng.uniform if rng is not None else random.uniform
    return draw(0.0, min(cap, base * (2**attempt)))


class RetryBudget:
    __slots__ = ("active", "floor", "percent", "retrying")

    def __init__(self, settings: ReliabilitySettings) -> None:
        self.percent = settings.retry_budget_percent
        self.floor = settings.retry_budget_min
        self.active = 0
        self.retrying = 0

    def limit(self) -> int:
        return max(self.floor, int(self.active * self.percent / 100))

    def try_acquire(self) -> bool:
        """Reserve a retry slot; the caller must release() it when the retry ends."""
        if self.retrying >= self.limit():
            return False
        self.retrying += 1
        return True

    def release(self) -> None:
        self.retrying -= 1
