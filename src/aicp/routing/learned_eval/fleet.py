"""The routes the eval sends requests to: the `Fleet` protocol and a seeded simulation of one.

A fleet answers what happens when request `t` goes to a route (`outcome`),
whether the user would score it (`feedback`), and what the route truly is at
`t` (`truth`), which only the scoring reads. Through a gateway (gateway.py)
the simulated fleet's outcomes become the fake upstreams' injected errors and
delays, and its truth is what the scoring reads there too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aicp.memory.routes import Outcome


@dataclass(frozen=True, slots=True)
class Truth:
    """What a route is like at one moment."""

    success: float  # chance a request succeeds
    latency_ms: float  # median latency of a success
    cost: float  # USD per successful request
    quality: float  # chance a user scores an answer 1 rather than 0


@dataclass(frozen=True, slots=True)
class SimRoute:
    key: str
    #: What the configuration says (the strategy's `Candidate.cost`, and its nominal latency).
    cost: float
    latency_ms: float
    #: (first request, truth from there on), in order; the first starts at 1.
    phases: tuple[tuple[int, Truth], ...]

    def at(self, t: int) -> Truth:
        truth = self.phases[0][1]
        for start, phase in self.phases:
            if t >= start:
                truth = phase
        return truth


class Fleet(Protocol):
    def routes(self) -> Sequence[SimRoute]: ...

    def outcome(self, route_key: str, t: int) -> Outcome: ...

    def feedback(self, route_key: str, t: int) -> float | None: ...

    def truth(self, route_key: str, t: int) -> Truth: ...


class SimulatedFleet:
    """Outcomes drawn from each route's truth: log-normal latency, Bernoulli success and scores."""

    def __init__(
        self,
        routes: Sequence[SimRoute],
        seed: int = 0,
        feedback_rate: float = 0.3,
        latency_sigma: float = 0.3,
    ) -> None:
        self._routes = {r.key: r for r in routes}
        self._rng = random.Random(seed)
        self.feedback_rate = feedback_rate
        self.latency_sigma = latency_sigma

    def routes(self) -> Sequence[SimRoute]:
        return list(self._routes.values())

    def truth(self, route_key: str, t: int) -> Truth:
        return self._routes[route_key].at(t)

    def outcome(self, route_key: str, t: int) -> Outcome:
        truth = self.truth(route_key, t)
        rng = self._rng
        latency = truth.latency_ms * math.exp(self.latency_sigma * rng.gauss(0.0, 1.0))
        if rng.random() < truth.success:
            return Outcome(True, latency, latency * 0.2, truth.cost)
        error = "timeout_error" if rng.random() < 0.3 else "http_503"
        return Outcome(False, latency, None, None, error)

    def feedback(self, route_key: str, t: int) -> float | None:
        """A thumbs up (1) or down (0) for a success, from some users only."""
        rng = self._rng
        if rng.random() >= self.feedback_rate:
            return None
        return 1.0 if rng.random() < self.truth(route_key, t).quality else 0.0


def _route(key: str, truth: Truth, *changes: tuple[int, Truth]) -> SimRoute:
    return SimRoute(key, truth.cost, truth.latency_ms, ((1, truth), *changes))


def degrading_fleet(change_at: int = 600) -> list[SimRoute]:
    """Four routes; the best ("balanced") starts failing a third of its requests at
    `change_at`, twice as slowly, which leaves "premium" the best.

    Utilities with the default weights (learned.py): balanced 1.04 then 0.61,
    premium 0.98, fast 0.84, local 0.78; round-robin 0.91, then 0.80.
    """
    balanced = Truth(0.99, 900.0, 0.006, 0.85)
    degraded = Truth(0.65, 1800.0, 0.006, 0.85)
    return [
        _route("fleet/balanced", balanced, (change_at, degraded)),
        _route("fleet/premium", Truth(0.99, 1400.0, 0.008, 0.92)),
        _route("fleet/fast", Truth(0.85, 450.0, 0.002, 0.30)),
        _route("fleet/local", Truth(0.85, 2500.0, 0.0003, 0.30)),
    ]
