"""The learned strategy: Thompson sampling over route memory (memory/routes.py).

Each candidate's utility, with weights from config:

    U = success * p + quality * q
        - latency * log10(latency / fastest) - cost * log10((cost + k) / (cheapest + k))

- p, the success probability, is sampled from Beta(successes + 1, failures + 1)
  of the decayed counts since the route last changed. A change is when the
  recent counts (memory's short half-life) and the older ones differ beyond
  noise (a likelihood-ratio test); from then on the older counts, decayed, are
  subtracted, which the sums' linearity makes exact. Without this a busy route
  that starts failing would trade on its long history for a whole half-life.
- q, the quality, is sampled from Beta(fb_sum + a*m, fb_n - fb_sum + a*(1 - m)):
  the decayed feedback scores on top of a prior of strength a (`quality_prior`)
  at the candidates' pooled feedback mean m. A candidate without feedback gets
  m itself, not a sample: its quality cannot be learned by routing to it, so
  noise there would only blur the other terms.
- ln(latency) is sampled from a normal around the decayed log-latency mean
  (blended with the nominal latency as one observation) with its standard
  error; a candidate never measured gets its nominal latency, else the others'
  mean, with a wide error.
- cost is a point estimate: the decayed mean cost per request, or for a
  candidate without one its configured cost scaled to per request by the ratio
  the measured candidates show.

Latency and cost count per tenfold against the best candidate: a candidate
ten times slower than the fastest loses `latency` of utility, one twice as
slow 0.3 of that. A log because both span orders of magnitude and are compared
as ratios; and under a log the reference cancels out of the choice, so adding
a candidate does not reorder the others (only k does: `cost_smoothing` times
the dearest candidate's cost, which keeps a free local model from an infinite
advantage). Per tenfold rather than per doubling so that, with the default
weights, a model twice the price needs 9 points more success (or 18 of
feedback) to win, not 30.

The candidate with the highest sampled utility is chosen ("exploit" when it
also has the highest expected utility, else "explore"); the rest follow in
order of sampled utility as the fallback chain. Two exploration rules sit on
top of Thompson: a candidate without outcomes is tried first (once per
`trial_gap_s` until its outcome arrives, so a burst does not all go to it), and
with probability `explore` the candidate with the least (decayed) evidence is
chosen, so a route that degraded and recovered is noticed even when the
sampling has all but given up on it. `Choice.evidence()` is what the receipt
keeps: each candidate's statistics at decision time and its sampled score.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Generic, Protocol, TypeVar

from aicp.memory.routes import RouteMemory, RouteStats
from aicp.protocol.jsonutil import Json

LN10 = math.log(10.0)
#: Standard error of ln(latency) for a nominal latency nobody measured yet.
PRIOR_LOG_SE = 0.5
#: Floor on the variance of ln(latency), so a few equal samples are not certainty.
LOG_VAR_FLOOR = 0.01
#: Decayed weight below which a cost measurement no longer counts.
MIN_COST_WEIGHT = 0.5
#: A change: the likelihood-ratio statistic of recent against older successes passes
#: this (chi-squared, one degree of freedom: about 3 standard errors), with at least
#: MIN_RECENT (decayed) requests on each side.
CHANGE_G = 9.0
MIN_RECENT = 5.0
#: A change's baseline is dropped once what it holds back has decayed below this.
BASELINE_FLOOR = 0.5


class Candidate(Protocol):
    """What the strategy needs of a route; `Deployment` is one."""

    @property
    def key(self) -> str: ...

    @property
    def cost(self) -> float: ...


C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True, slots=True)
class Weights:
    success: float = 1.0
    quality: float = 0.5
    latency: float = 0.3
    cost: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"weight {f.name!r} must be a number >= 0, not {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, float]) -> Weights:
        known = {f.name for f in fields(cls)}
        for name in data:
            if name not in known:
                raise ValueError(f"unknown weight {name!r} (have: {', '.join(sorted(known))})")
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class LearnedSettings:
    weights: Weights = field(default_factory=Weights)
    #: Chance per decision of choosing the candidate with the least (decayed) evidence.
    explore: float = 0.02
    #: An untried candidate is forced at most once per this many seconds.
    trial_gap_s: float = 10.0
    #: k in the cost term, as a fraction of the dearest candidate's cost.
    cost_smoothing: float = 0.05
    #: Pseudo-count of the quality prior.
    quality_prior: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.explore < 1.0:
            raise ValueError(f"explore must be in [0, 1), not {self.explore!r}")
        if not (self.cost_smoothing > 0 and self.quality_prior > 0 and self.trial_gap_s >= 0):
            raise ValueError("cost_smoothing and quality_prior must be > 0, trial_gap_s >= 0")


@dataclass(frozen=True, slots=True)
class Reference:
    """What utility's latency and cost terms are relative to."""

    latency_ms: float
    cost: float
    #: k of the cost term, in the cost's unit.
    k: float


def utility(
    w: Weights, success: float, quality: float, latency_ms: float, cost: float, ref: Reference
) -> float:
    """The strategy's utility for known values (the eval scores routes with it)."""
    lat = math.log10(latency_ms / ref.latency_ms)
    dear = math.log10((cost + ref.k) / (ref.cost + ref.k)) if ref.k > 0 else 0.0
    return w.success * success + w.quality * quality - w.latency * lat - w.cost * dear


@dataclass(slots=True)
class Estimate:
    """One candidate as the strategy saw it: the receipt's evidence."""

    route: str
    count: int
    n: float
    #: Over the evidence used: since the last change, if one was seen.
    success_rate: float | None
    recent_success_rate: float | None
    #: When the route's success rate was last seen to change (its older outcomes
    #: no longer count), or None.
    changed_at: float | None
    latency_ms: float | None
    cost: float
    feedback: float | None
    feedback_n: float
    #: Utility at the posterior means, and as sampled for this decision.
    expected: float = 0.0
    score: float = 0.0

    def as_dict(self) -> Json:
        rate, recent = self.success_rate, self.recent_success_rate
        lat, fb = self.latency_ms, self.feedback
        return {
            "route": self.route,
            "count": self.count,
            "n": round(self.n, 3),
            "success_rate": None if rate is None else round(rate, 4),
            "recent_success_rate": None if recent is None else round(recent, 4),
            "changed_at": self.changed_at,
            "latency_ms": None if lat is None else round(lat, 1),
            "cost": round(self.cost, 8),
            "feedback": None if fb is None else round(fb, 4),
            "feedback_n": round(self.feedback_n, 3),
            "expected": round(self.expected, 4),
            "score": round(self.score, 4),
        }


@dataclass(slots=True)
class Choice(Generic[C]):
    #: The chosen candidate first, then the fallbacks.
    chain: list[C]
    #: "exploit" or "explore".
    reason: str
    #: "sampled" (Thompson), "untried" (never observed) or "floor" (the exploration floor).
    why: str
    task_class: str
    #: In the chain's order.
    estimates: list[Estimate]

    @property
    def chosen(self) -> C:
        return self.chain[0]

    def evidence(self) -> Json:
        return {
            "strategy": "learned",
            "task_class": self.task_class,
            "chosen": self.chain[0].key,
            "reason": self.reason,
            "why": self.why,
            "candidates": [e.as_dict() for e in self.estimates],
        }


class LearnedStrategy:
    def __init__(
        self,
        memory: RouteMemory,
        settings: LearnedSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.memory = memory
        self.settings = settings or LearnedSettings()
        self.rng = rng or random.Random()
        #: (task class, route) -> when it was last forced as untried.
        self._trials: dict[tuple[str, str], float] = {}
        #: (task class, route) -> the evidence from before its last change.
        self._baselines: dict[tuple[str, str], _Baseline] = {}

    def choose(
        self,
        task_class: str,
        candidates: Sequence[C],
        latency_ms: Mapping[str, float] | None = None,
    ) -> Choice[C]:
        """Order `candidates` (the routes policy allows); `latency_ms` has nominal latencies."""
        if not candidates:
            raise ValueError("the learned strategy needs at least one candidate")
        now = self.memory.now()
        memory, empty = self.memory, RouteStats.empty(now)
        stats = [memory.stats(task_class, c.key, now) or empty for c in candidates]
        counts = [
            self._counts(task_class, c.key, s, now) for c, s in zip(candidates, stats, strict=True)
        ]
        est = self._estimate(candidates, stats, counts, latency_ms or {})
        chosen, reason, why = self._decide(task_class, candidates, stats, est, now)
        rest = sorted(
            (i for i in range(len(candidates)) if i != chosen), key=lambda i: -est[i].score
        )
        order = [chosen, *rest]
        return Choice(
            [candidates[i] for i in order], reason, why, task_class, [est[i] for i in order]
        )

    def _decide(
        self,
        task_class: str,
        candidates: Sequence[C],
        stats: list[RouteStats],
        est: list[Estimate],
        now: float,
    ) -> tuple[int, str, str]:
        gap = self.settings.trial_gap_s
        for i, s in enumerate(stats):
            if s.count == 0:
                key = (task_class, candidates[i].key)
                if now - self._trials.get(key, -math.inf) >= gap:
                    if len(self._trials) >= 10_000:
                        self._trials.clear()
                    self._trials[key] = now
                    return i, "explore", "untried"
        if len(est) > 1 and self.rng.random() < self.settings.explore:
            stalest = min(range(len(est)), key=lambda i: est[i].n)
            return stalest, "explore", "floor"
        best = max(range(len(est)), key=lambda i: est[i].score)
        likely = max(range(len(est)), key=lambda i: est[i].expected)
        return best, "exploit" if best == likely else "explore", "sampled"

    def _counts(
        self, task_class: str, route: str, s: RouteStats, now: float
    ) -> tuple[float, float, float | None]:
        """Successes and failures since the route's last change, and when that was.

        The sums are linear, so the evidence since a change is the sums now less the
        sums then, decayed; a change is seen by comparing the recent sums (a short
        half-life) with the rest.
        """
        ok, fail = s.successes, s.failures
        key = (task_class, route)
        base = self._baselines.get(key)
        since = None
        if base is not None:
            d = 2.0 ** ((base.at - now) / self.memory.half_life_s)
            if (base.ok + base.fail) * d < BASELINE_FLOOR:
                del self._baselines[key]
            else:
                ok, fail = max(ok - base.ok * d, 0.0), max(fail - base.fail * d, 0.0)
                since = base.at
        ok_r, fail_r = min(s.recent_successes, ok), min(s.recent_failures, fail)
        if not _changed(ok - ok_r, fail - fail_r, ok_r, fail_r):
            return ok, fail, since
        if len(self._baselines) >= 10_000:
            self._baselines.clear()
        self._baselines[key] = _Baseline(now, s.successes - ok_r, s.failures - fail_r)
        return ok_r, fail_r, now

    def _estimate(
        self,
        candidates: Sequence[C],
        stats: list[RouteStats],
        counts: list[tuple[float, float, float | None]],
        nominal: Mapping[str, float],
    ) -> list[Estimate]:
        st = self.settings
        w = st.weights
        rng = self.rng
        beta, gauss = rng.betavariate, rng.gauss
        lat = _latencies(candidates, stats, nominal)
        costs = _costs(candidates, stats)
        dearest = max(costs)
        k = st.cost_smoothing * dearest
        cheapest = math.log10(min(costs) + k) if dearest > 0 else 0.0
        known = [mu for mu, _ in lat if mu is not None]
        fastest = min(known) if known else 0.0
        fb_w = sum(s.feedback_weight for s in stats)
        fb_s = sum(s.feedback_sum for s in stats)
        m = min(max(fb_s / fb_w, 0.01), 0.99) if fb_w > 1e-9 else 0.5
        a = st.quality_prior
        w_s, w_q, w_c, slow = w.success, w.quality, w.cost, w.latency / LN10
        out: list[Estimate] = []
        rows = zip(candidates, stats, counts, lat, costs, strict=True)
        for c, s, (ok, fail, since), (mu, se), cost in rows:
            fbw = s.feedback_weight
            p = beta(ok + 1.0, fail + 1.0)
            p_mean = (ok + 1.0) / (ok + fail + 2.0)
            q = q_mean = m
            if fbw > 1e-9:
                good = s.feedback_sum + a * m
                bad = fbw - s.feedback_sum
                bad = (bad if bad > 0.0 else 0.0) + a * (1.0 - m)
                q_mean = good / (good + bad)
                q = beta(good, bad)
            dear = w_c * (math.log10(cost + k) - cheapest) if dearest > 0 else 0.0
            expected = w_s * p_mean + w_q * q_mean - dear
            score = w_s * p + w_q * q - dear
            if mu is not None:
                expected -= slow * (mu - fastest)
                # An error worth under 0.002 of utility is not worth a sample.
                noise = gauss(0.0, se) if slow * se > 0.002 else 0.0
                score -= slow * (mu + noise - fastest)
            out.append(
                Estimate(
                    c.key,
                    s.count,
                    s.n,
                    ok / (ok + fail) if ok + fail > 0 else None,
                    s.recent_success_rate,
                    since,
                    None if mu is None else math.exp(mu),
                    cost,
                    s.feedback,
                    fbw,
                    expected,
                    score,
                )
            )
        return out


@dataclass(slots=True)
class _Baseline:
    at: float
    ok: float
    fail: float


def _changed(ok: float, fail: float, ok_recent: float, fail_recent: float) -> bool:
    """Whether recent successes and failures differ from the older ones beyond noise."""
    recent = ok_recent + fail_recent
    if recent < MIN_RECENT or ok + fail < MIN_RECENT:
        return False
    p = (ok + 1.0) / (ok + fail + 2.0)
    r = (ok_recent + 1.0) / (recent + 2.0)
    g = ok_recent * math.log(r / p) + fail_recent * math.log((1.0 - r) / (1.0 - p))
    return 2.0 * g > CHANGE_G


def _latencies(
    candidates: Sequence[Candidate],
    stats: list[RouteStats],
    nominal: Mapping[str, float],
) -> list[tuple[float | None, float]]:
    """(mean, standard error) of ln(latency ms) per candidate; None where nothing is known."""
    out: list[tuple[float | None, float]] = []
    for c, s in zip(candidates, stats, strict=True):
        prior = nominal.get(c.key)
        prior_mu = math.log(prior) if prior is not None and prior > 0 else None
        if s.latency_log_mean is not None and s.latency_weight > 0:
            n = s.latency_weight
            mu = s.latency_log_mean
            if prior_mu is not None:
                mu = (n * mu + prior_mu) / (n + 1.0)
            out.append((mu, math.sqrt(max(s.latency_log_var, LOG_VAR_FLOOR) / (n + 1.0))))
        elif prior_mu is not None:
            out.append((prior_mu, PRIOR_LOG_SE))
        else:
            out.append((None, 0.0))
    known = [mu for mu, _ in out if mu is not None]
    if not known or len(known) == len(out):
        return out
    middle = sum(known) / len(known)
    return [(middle, PRIOR_LOG_SE) if mu is None else (mu, se) for mu, se in out]


def _costs(candidates: Sequence[Candidate], stats: list[RouteStats]) -> list[float]:
    """Cost per request: measured where it is, else configured cost times the measured ratio."""
    measured: list[float | None] = []
    spent = listed = 0.0
    for c, s in zip(candidates, stats, strict=True):
        if s.cost is not None and s.cost_weight >= MIN_COST_WEIGHT:
            measured.append(s.cost)
            if c.cost > 0:
                spent += s.cost * s.cost_weight
                listed += c.cost * s.cost_weight
        else:
            measured.append(None)
    scale = spent / listed if listed > 0 else 1.0
    return [
        max(c.cost * scale, 0.0) if m is None else m
        for c, m in zip(candidates, measured, strict=True)
    ]
