"""A circuit breaker per deployment.

States follow the usual closed -> open -> half-open cycle. The trip rule is
Envoy's outlier detection by failure percentage (`failure_percentage_threshold`
over at least `failure_percentage_request_volume` requests in an interval,
envoy/api/v3 cluster/outlier_detection.proto), evaluated over a sliding window
of one-second buckets. After `open_s` the breaker lets `half_open_probes`
requests through; all of them succeeding closes it, any failure re-opens it.
Unlike Envoy's ejection we do not grow the open time with repeated trips; a
deployment that keeps failing keeps failing its probes.

`on_change(breaker, previous_state)` hears every change of state; whoever makes
the breaker decides what it means (state.py turns it into `breaker.*` events),
so the breaker knows nothing of events.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from aicp.config import BreakerSettings

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

#: Called after a breaker changed state, with the breaker and its previous state.
OnChange = Callable[["Breaker", str], None]


class Breaker:
    __slots__ = (
        "_buckets",
        "_clock",
        "_probes_ok",
        "_probes_out",
        "on_change",
        "opened_at",
        "settings",
        "state",
        "trips",
    )

    def __init__(
        self,
        settings: BreakerSettings,
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.on_change = on_change
        self.state = CLOSED
        self.opened_at = 0.0
        self.trips = 0
        # [second, successes, failures] per one-second bucket inside the window.
        self._buckets: deque[list[int]] = deque()
        self._probes_out = 0
        self._probes_ok = 0

    def allow(self) -> bool:
        """May a request go to this deployment now? Reserves a probe when half-open."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self.opened_at < self.settings.open_s:
                return False
            self._probes_out = self._probes_ok = 0
            self._change(HALF_OPEN)
        if self._probes_out >= self.settings.half_open_probes:
            return False
        self._probes_out += 1
        return True

    def available(self) -> bool:
        """Like allow() but reserves nothing (for routing and the health view)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return self._clock() - self.opened_at >= self.settings.open_s
        return self._probes_out < self.settings.half_open_probes

    def reopens_in(self) -> float | None:
        """Seconds until an open breaker lets probes through; None when not open."""
        if self.state != OPEN:
            return None
        return max(0.0, self.opened_at + self.settings.open_s - self._clock())

    def record(self, ok: bool) -> None:
        if self.state == HALF_OPEN:
            if not ok:
                self._open()
                return
            self._probes_ok += 1
            if self._probes_ok >= self.settings.half_open_probes:
                self._buckets.clear()
                self._change(CLOSED)
            return
        if self.state == OPEN:
            return
        now = int(self._clock())
        buckets = self._buckets
        if not buckets or buckets[-1][0] != now:
            buckets.append([now, 0, 0])
            horizon = now - self.settings.window_s
            while buckets and buckets[0][0] <= horizon:
                buckets.popleft()
        buckets[-1][1 if ok else 2] += 1
        if not ok:
            total, failed = self.counts()
            if total >= self.settings.min_requests and failed / total >= self.settings.failure_rate:
                self._open()

    def forget(self) -> None:
        """A request ended with no verdict on health (a client error): free its probe."""
        if self.state == HALF_OPEN and self._probes_out > self._probes_ok:
            self._probes_out -= 1

    def counts(self) -> tuple[int, int]:
        horizon = self._clock() - self.settings.window_s
        total = failed = 0
        for second, ok, bad in self._buckets:
            if second > horizon:
                total += ok + bad
                failed += bad
        return total, failed

    def _open(self) -> None:
        self.opened_at = self._clock()
        self.trips += 1
        self._change(OPEN)  # before the window is cleared: a listener may count it
        self._buckets.clear()

    def _change(self, state: str) -> None:
        previous, self.state = self.state, state
        if self.on_change is not None:
            self.on_change(self, previous)
