"""Live state of one deployment: breaker, latency EWMA, requests in flight, rpm."""

from __future__ import annotations

import time

from aicp.config import BreakerSettings
from aicp.reliability.breaker import Breaker, OnChange

#: Weight of the newest sample in the latency EWMA.
EWMA_ALPHA = 0.3


class DeploymentHealth:
    __slots__ = (
        "_minute",
        "_minute_count",
        "breaker",
        "ewma_ms",
        "failures",
        "in_flight",
        "max_concurrency",
        "requests",
        "rpm",
    )

    def __init__(
        self,
        breaker: BreakerSettings,
        rpm: int | None = None,
        max_concurrency: int | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.breaker = Breaker(breaker, on_change=on_change)
        self.ewma_ms: float | None = None
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.rpm = rpm
        self.max_concurrency = max_concurrency
        self._minute = 0
        self._minute_count = 0

    def has_capacity(self) -> bool:
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            return False
        if self.rpm is not None:
            minute = int(time.monotonic() // 60)
            if minute == self._minute and self._minute_count >= self.rpm:
                return False
        return True

    def routable(self) -> bool:
        return self.has_capacity() and self.breaker.available()

    def start(self) -> None:
        self.in_flight += 1
        self.requests += 1
        if self.rpm is not None:
            minute = int(time.monotonic() // 60)
            if minute != self._minute:
                self._minute, self._minute_count = minute, 0
            self._minute_count += 1

    def finish(self, ok: bool, latency_ms: float | None, counts_for_breaker: bool = True) -> None:
        self.in_flight -= 1
        if not ok:
            self.failures += 1
        if counts_for_breaker:
            self.breaker.record(ok)
        else:
            self.breaker.forget()
        if ok and latency_ms is not None:
            prev = self.ewma_ms
            self.ewma_ms = latency_ms if prev is None else prev + EWMA_ALPHA * (latency_ms - prev)

    def view(self) -> dict[str, object]:
        total, failed = self.breaker.counts()
        return {
            "state": self.breaker.state,
            "window_requests": total,
            "window_failures": failed,
            "trips": self.breaker.trips,
            "in_flight": self.in_flight,
            "requests": self.requests,
            "failures": self.failures,
            "latency_ewma_ms": None if self.ewma_ms is None else round(self.ewma_ms, 3),
        }
