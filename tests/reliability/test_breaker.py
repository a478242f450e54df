"""The circuit breaker, driven by an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from aicp.config import BreakerSettings
from aicp.reliability.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from aicp.reliability.health import DeploymentHealth


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: Any) -> Breaker:
    base: dict[str, Any] = {"failure_rate": 0.5, "min_requests": 4, "window_s": 10, "open_s": 5}
    return Breaker(BreakerSettings.model_validate({**base, **kw}), clock)


def trip(b: Breaker) -> None:
    for _ in range(b.settings.min_requests):
        b.record(False)
    assert b.state == OPEN


def test_breaker_stays_closed_below_the_minimum_volume() -> None:
    b = make(Clock(), min_requests=4)
    for _ in range(3):
        b.record(False)
    assert b.state == CLOSED
    assert b.allow()
    b.record(False)
    assert b.state == OPEN
    assert b.trips == 1


def test_breaker_opens_only_when_the_failure_rate_reaches_the_threshold() -> None:
    b = make(Clock(), failure_rate=0.5, min_requests=4)
    for _ in range(4):
        b.record(True)
    for _ in range(3):
        b.record(False)
    assert b.state == CLOSED  # 3 of 7 failed: under 50%
    b.record(False)
    assert b.state == OPEN  # 4 of 8


def test_breaker_forgets_outcomes_older_than_the_window() -> None:
    clock = Clock()
    b = make(clock, min_requests=4, window_s=10)
    for _ in range(3):
        b.record(False)
    clock.now += 11
    b.record(False)
    assert b.counts() == (1, 1)
    assert b.state == CLOSED


def test_breaker_rejects_requests_while_open_until_open_s_passed() -> None:
    clock = Clock()
    b = make(clock, open_s=5)
    trip(b)
    assert not b.allow()
    assert not b.available()
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.2
    assert b.available()
    assert b.allow()
    assert b.state == HALF_OPEN


def test_half_open_lets_exactly_the_configured_number_of_probes_through() -> None:
    clock = Clock()
    b = make(clock, half_open_probes=2)
    trip(b)
    clock.now += 6
    assert b.allow()
    assert b.allow()
    assert not b.allow()
    assert not b.available()


def test_half_open_closes_after_all_probes_succeed() -> None:
    clock = Clock()
    b = make(clock, half_open_probes=2)
    trip(b)
    clock.now += 6
    assert b.allow() and b.allow()
    b.record(True)
    assert b.state == HALF_OPEN
    b.record(True)
    assert b.state == CLOSED
    assert b.counts() == (0, 0)  # a fresh window: old failures do not re-trip it
    b.record(False)
    assert b.state == CLOSED


def test_a_failed_probe_reopens_the_breaker_for_another_open_s() -> None:
    clock = Clock()
    b = make(clock, half_open_probes=2, open_s=5)
    trip(b)
    clock.now += 6
    assert b.allow()
    b.record(False)
    assert b.state == OPEN
    assert b.trips == 2
    assert not b.allow()
    clock.now += 5.1
    assert b.allow()


def test_a_client_error_frees_its_probe() -> None:
    clock = Clock()
    b = make(clock, half_open_probes=1)
    trip(b)
    clock.now += 6
    assert b.allow()
    assert not b.allow()
    b.forget()  # the probe ended with a 400: no verdict on the deployment
    assert b.state == HALF_OPEN
    assert b.allow()
    b.record(True)
    assert b.state == CLOSED


def test_forget_does_not_free_a_probe_that_already_succeeded() -> None:
    clock = Clock()
    b = make(clock, half_open_probes=2)
    trip(b)
    clock.now += 6
    assert b.allow()
    b.record(True)
    b.forget()
    assert b.allow()
    assert not b.allow()


def test_outcomes_while_open_are_ignored() -> None:
    clock = Clock()
    b = make(clock)
    trip(b)
    b.record(True)
    b.record(False)
    assert b.state == OPEN
    assert b.trips == 1


@pytest.mark.parametrize("ok", [True, False])
def test_health_client_errors_do_not_count_against_the_breaker(ok: bool) -> None:
    health = DeploymentHealth(BreakerSettings(min_requests=1))
    health.start()
    health.finish(ok=False, latency_ms=5.0, counts_for_breaker=False)
    assert health.breaker.state == CLOSED
    assert health.in_flight == 0
    health.start()
    health.finish(ok=ok, latency_ms=5.0)
    assert health.breaker.state == (CLOSED if ok else OPEN)


def test_health_latency_ewma_follows_successes_only() -> None:
    health = DeploymentHealth(BreakerSettings())
    health.start()
    health.finish(True, 100.0)
    assert health.ewma_ms == 100.0
    health.start()
    health.finish(True, 200.0)
    assert health.ewma_ms == pytest.approx(130.0)
    health.start()
    health.finish(False, 5000.0)
    assert health.ewma_ms == pytest.approx(130.0)
    assert health.view()["failures"] == 1
