"""Route memory: what each (task class, route) did lately, as exponentially decayed sums.

Every statistic decays with one half-life in *time* (`half_life_s`), not in
requests, for two reasons:

- sums from several processes merge exactly: each is decayed to a common
  instant and added, in any order. A half-life in requests cannot be merged,
  since no process knows how many requests the others served in between.
- evidence about a route nobody uses fades, so the learned strategy grows
  unsure of it and tries it again; counted in its own requests, a route that
  lost its traffic would keep its old verdict forever.

A sum `S` that stood at time `ref` stands at `S * 2 ** ((ref - t) / half_life_s)`
at time `t`. Times are epoch seconds (wall clock), the only clock that several
hosts share. Inside a cell the sums are kept "grown" relative to the cell's
`base` (an outcome at `t` adds `x * 2 ** ((t - base) / h)`), so an observe adds
to the sums it touches and multiplies nothing; reading divides by the growth
once. The base moves forward when the growth would get large.

Successes and failures are also kept with a half-life RECENT times shorter,
which shows a busy route's change within a few dozen requests (the learned
strategy's change detection).

Rows (`RouteRow`) are what `drain_deltas` returns and `merge` and `load` take:
sums decayed to `ref`, the time of the row's last update. Two rows of one key
combine by decaying both to the later `ref` and adding (`combine`), which is
commutative and associative, so the database may add deltas in any order
(`ok_recent` and `fail_recent` decay with `half_life_s / RECENT`).

Feedback scores are in [0, 1] (1 is best). A thumbs-up/down is 1 or 0; a score
on -1..1 maps to (s + 1) / 2 at the API. Latency and TTFT are kept as the
decayed mean and variance of their logarithm (latencies are skewed and compared
by ratio), of successes only: a fast error says nothing about a route's speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from aicp.protocol.jsonutil import Json

#: The sums a cell keeps and a row carries, besides the recent ones.
SUMS = (
    "ok",  # decayed successes
    "fail",  # decayed failures
    "lat_w",  # latency of successes: weight, sum of ln(ms), sum of ln(ms) ** 2
    "lat_s",
    "lat_q",
    "ttft_w",  # time to first token, the same way
    "ttft_s",
    "ttft_q",
    "cost_w",  # cost in USD: weight, sum
    "cost_s",
    "fb_w",  # feedback scores: weight, sum, sum of squares
    "fb_s",
    "fb_q",
)

#: The recent sums' half-life is half_life_s / RECENT.
RECENT = 16

#: The base moves when the recent sums' growth passes 2**REBASE; within a float's range.
REBASE = 60.0


class RouteRow(TypedDict):
    task_class: str
    route: str
    #: Epoch seconds: the sums are decayed to this instant, the row's last update.
    ref: float
    #: Outcomes observed, not decayed.
    count: int
    ok: float
    fail: float
    #: Decayed with half_life_s / RECENT.
    ok_recent: float
    fail_recent: float
    lat_w: float
    lat_s: float
    lat_q: float
    ttft_w: float
    ttft_s: float
    ttft_q: float
    cost_w: float
    cost_s: float
    fb_w: float
    fb_s: float
    fb_q: float
    #: Error type -> decayed count.
    errors: dict[str, float]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request went on one route."""

    ok: bool
    latency_ms: float | None = None
    ttft_ms: float | None = None
    #: USD; None when nothing was billed (a failed attempt usually).
    cost: float | None = None
    #: The error's type when not ok ("timeout_error", "http_503", ...).
    error: str | None = None


@dataclass(slots=True)
class RouteStats:
    """One cell's statistics decayed to one instant (error types: `RouteMemory.errors`)."""

    count: int
    successes: float
    failures: float
    #: With the short half-life (RECENT).
    recent_successes: float
    recent_failures: float
    #: Mean and variance of ln(latency ms) over successes, and their weight.
    latency_log_mean: float | None
    latency_log_var: float
    latency_weight: float
    ttft_log_mean: float | None
    ttft_log_var: float
    cost: float | None
    cost_weight: float
    feedback: float | None
    feedback_var: float
    feedback_weight: float
    #: Sum of the feedback scores (decayed), for a Beta posterior.
    feedback_sum: float
    updated_at: float

    @classmethod
    def empty(cls, now: float) -> RouteStats:
        """The statistics of a route never seen."""
        return cls(
            0, 0.0, 0.0, 0.0, 0.0, None, 0.0, 0.0, None, 0.0, None, 0.0, None, 0.0, 0.0, 0.0, now
        )

    @property
    def n(self) -> float:
        return self.successes + self.failures

    @property
    def success_rate(self) -> float | None:
        n = self.successes + self.failures
        return self.successes / n if n > 0 else None

    @property
    def recent_success_rate(self) -> float | None:
        n = self.recent_successes + self.recent_failures
        return self.recent_successes / n if n > 0 else None

    @property
    def latency_ms(self) -> float | None:
        """The geometric mean (a log-normal's median)."""
        m = self.latency_log_mean
        return None if m is None else math.exp(m)


class _Cell:
    __slots__ = ("base", "count", "errors", "fail_r", "last", "ok_r", *SUMS)

    def __init__(self, base: float) -> None:
        self.base = base
        self.count = 0
        self.last = -math.inf
        self.errors: dict[str, float] = {}
        # Spelled out (not a loop over SUMS) so that the type checker knows them.
        self.ok = self.fail = self.ok_r = self.fail_r = 0.0
        self.lat_w = self.lat_s = self.lat_q = 0.0
        self.ttft_w = self.ttft_s = self.ttft_q = 0.0
        self.cost_w = self.cost_s = 0.0
        self.fb_w = self.fb_s = self.fb_q = 0.0

    def rebase(self, base: float, inv_h: float) -> None:
        f = 2.0 ** ((self.base - base) * inv_h)
        for name in SUMS:
            setattr(self, name, getattr(self, name) * f)
        self.ok_r *= f**RECENT
        self.fail_r *= f**RECENT
        self.errors = {k: v * f for k, v in self.errors.items()}
        self.base = base

    def growth(self, t: float, inv_h: float) -> float:
        e = (t - self.base) * inv_h
        if e * RECENT > REBASE:
            self.rebase(t, inv_h)
            e = 0.0
        if t > self.last:
            self.last = t
        growth: float = 2.0**e
        return growth

    def add(self, o: Outcome, t: float, inv_h: float) -> None:
        g = self.growth(t, inv_h)
        self.count += 1
        if o.ok:
            self.ok += g
            self.ok_r += g**RECENT
            lat = o.latency_ms
            if lat is not None and lat > 0:
                x = math.log(lat)
                self.lat_w += g
                self.lat_s += g * x
                self.lat_q += g * x * x
            lat = o.ttft_ms
            if lat is not None and lat > 0:
                x = math.log(lat)
                self.ttft_w += g
                self.ttft_s += g * x
                self.ttft_q += g * x * x
        else:
            self.fail += g
            self.fail_r += g**RECENT
            kind = o.error or "error"
            self.errors[kind] = self.errors.get(kind, 0.0) + g
        if o.cost is not None and o.cost >= 0:  # also keeps a NaN out
            self.cost_w += g
            self.cost_s += g * o.cost

    def add_feedback(self, score: float, t: float, inv_h: float) -> None:
        g = self.growth(t, inv_h)
        self.fb_w += g
        self.fb_s += g * score
        self.fb_q += g * score * score

    def absorb(self, row: Mapping[str, Any], inv_h: float) -> None:
        # A Mapping, not a RouteRow: a database hands back its own number types.
        g = self.growth(float(row["ref"]), inv_h)
        self.count += int(row["count"])
        for name in SUMS:
            setattr(self, name, getattr(self, name) + g * float(row[name]))
        gr = g**RECENT
        self.ok_r += gr * float(row["ok_recent"])
        self.fail_r += gr * float(row["fail_recent"])
        for kind, v in row["errors"].items():
            self.errors[kind] = self.errors.get(kind, 0.0) + g * float(v)

    def row(self, task_class: str, route: str, inv_h: float) -> RouteRow:
        f = 2.0 ** ((self.base - self.last) * inv_h)
        fr = f**RECENT
        return RouteRow(
            task_class=task_class,
            route=route,
            ref=self.last,
            count=self.count,
            ok=self.ok * f,
            fail=self.fail * f,
            ok_recent=self.ok_r * fr,
            fail_recent=self.fail_r * fr,
            lat_w=self.lat_w * f,
            lat_s=self.lat_s * f,
            lat_q=self.lat_q * f,
            ttft_w=self.ttft_w * f,
            ttft_s=self.ttft_s * f,
            ttft_q=self.ttft_q * f,
            cost_w=self.cost_w * f,
            cost_s=self.cost_s * f,
            fb_w=self.fb_w * f,
            fb_s=self.fb_s * f,
            fb_q=self.fb_q * f,
            errors={k: v * f for k, v in self.errors.items()},
        )

    def stats(self, now: float, inv_h: float) -> RouteStats:
        f = 2.0 ** ((self.base - now) * inv_h)
        lat_w = self.lat_w
        if lat_w > 0:  # inline: the strategy reads this for every candidate
            mean = self.lat_s / lat_w
            lat_m: float | None = mean
            lat_v = max(self.lat_q / lat_w - mean * mean, 0.0)
        else:
            lat_m, lat_v = None, 0.0
        ttft_m, ttft_v = _moments(self.ttft_w, self.ttft_s, self.ttft_q)
        fb_m, fb_v = _moments(self.fb_w, self.fb_s, self.fb_q)
        cost_w = self.cost_w
        fr = f**RECENT
        return RouteStats(
            self.count,
            self.ok * f,
            self.fail * f,
            self.ok_r * fr,
            self.fail_r * fr,
            lat_m,
            lat_v,
            lat_w * f,
            ttft_m,
            ttft_v,
            self.cost_s / cost_w if cost_w > 0 else None,
            cost_w * f,
            fb_m,
            fb_v,
            self.fb_w * f,
            self.fb_s * f,
            self.last,
        )

    def decayed_errors(self, now: float, inv_h: float) -> dict[str, float]:
        f = 2.0 ** ((self.base - now) * inv_h)
        return {k: v * f for k, v in sorted(self.errors.items())}


def _moments(w: float, s: float, q: float) -> tuple[float | None, float]:
    """Weighted mean and variance from the sums of weight, x and x**2 (grown alike)."""
    if w <= 0:
        return None, 0.0
    m = s / w
    return m, max(q / w - m * m, 0.0)


def combine(rows: Iterable[RouteRow], half_life_s: float) -> list[RouteRow]:
    """Rows of equal (task class, route) folded into one each: the database's upsert."""
    cells: dict[tuple[str, str], _Cell] = {}
    inv_h = 1.0 / half_life_s
    for row in rows:
        key = (row["task_class"], row["route"])
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell(float(row["ref"]))
        cell.absorb(row, inv_h)
    return [cell.row(tc, route, inv_h) for (tc, route), cell in cells.items()]


class RouteMemory:
    """Decayed outcome statistics per (task class, route), with deltas for a shared store.

    Sharing through one database (each process, periodically and in one task):
    `drain_deltas()` and add them to the shared rows, read the shared rows back and
    `load()` them; the deltas not yet drained stay on top. Adding row r to stored
    row s (`combine` does the same in Python), with h = half_life_s:
    ref = max(s.ref, r.ref); each sum x = s.x * 2^((s.ref - ref) / h) +
    r.x * 2^((r.ref - ref) / h), with h / RECENT for ok_recent and fail_recent;
    counts add; error types add per type, decayed alike. `merge()` instead adds
    rows to what is here, for a store that ships deltas from process to process.
    Every process must use the same half-life.
    """

    def __init__(
        self,
        half_life_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        max_cells: int = 10_000,
    ) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be positive, not {half_life_s!r}")
        self.half_life_s = half_life_s
        self._inv_h = 1.0 / half_life_s
        self._clock = clock
        self.max_cells = max_cells
        self._cells: dict[tuple[str, str], _Cell] = {}
        #: What this process saw since the last drain.
        self._deltas: dict[tuple[str, str], _Cell] = {}

    def now(self) -> float:
        return self._clock()

    def _cell(self, cells: dict[tuple[str, str], _Cell], key: tuple[str, str], t: float) -> _Cell:
        cell = cells.get(key)
        if cell is None:
            if len(cells) >= self.max_cells:
                # Bounded: clients can name any `provider/model`; the stalest cell goes.
                del cells[min(cells, key=lambda k: cells[k].last)]
            cell = cells[key] = _Cell(t)
        return cell

    # --- recording ------------------------------------------------------------------

    def observe(self, task_class: str, route: str, outcome: Outcome) -> None:
        t = self._clock()
        key = (task_class, route)
        inv_h = self._inv_h
        cell = self._cells.get(key) or self._cell(self._cells, key, t)
        cell.add(outcome, t, inv_h)
        cell = self._deltas.get(key) or self._cell(self._deltas, key, t)
        cell.add(outcome, t, inv_h)

    def feedback(self, task_class: str, route: str, score: float) -> None:
        """A user's score for a request served by `route`, in [0, 1] (1 is best)."""
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"a feedback score is in [0, 1], not {score!r}")
        t = self._clock()
        key = (task_class, route)
        self._cell(self._cells, key, t).add_feedback(score, t, self._inv_h)
        self._cell(self._deltas, key, t).add_feedback(score, t, self._inv_h)

    # --- sharing ----------------------------------------------------------------------

    def drain_deltas(self) -> list[RouteRow]:
        """What this process recorded since the last drain, as rows; forgets them."""
        deltas, self._deltas = self._deltas, {}
        return [cell.row(tc, route, self._inv_h) for (tc, route), cell in deltas.items()]

    def merge(self, rows: Iterable[RouteRow]) -> None:
        """Add rows (another process's deltas) to this memory. Order does not matter."""
        for row in rows:
            key = (row["task_class"], row["route"])
            self._cell(self._cells, key, float(row["ref"])).absorb(row, self._inv_h)

    def load(self, rows: Iterable[RouteRow]) -> None:
        """Replace the state with the shared totals `rows` plus the deltas not yet drained."""
        self._cells = {}
        self.merge(rows)
        self.merge(self._pending())

    def _pending(self) -> list[RouteRow]:
        return [cell.row(tc, route, self._inv_h) for (tc, route), cell in self._deltas.items()]

    def rows(self) -> list[RouteRow]:
        """The whole state as rows (to seed a shared store, or to compare two memories)."""
        return [cell.row(tc, route, self._inv_h) for (tc, route), cell in self._cells.items()]

    # --- reading ------------------------------------------------------------------------

    def stats(self, task_class: str, route: str, now: float | None = None) -> RouteStats | None:
        cell = self._cells.get((task_class, route))
        if cell is None:
            return None
        return cell.stats(self._clock() if now is None else now, self._inv_h)

    def errors(self, task_class: str, route: str, now: float | None = None) -> dict[str, float]:
        """Decayed counts of each error type."""
        cell = self._cells.get((task_class, route))
        if cell is None:
            return {}
        return cell.decayed_errors(self._clock() if now is None else now, self._inv_h)

    def snapshot(self, task_class: str | None = None) -> list[Json]:
        """Every cell (or one task class's), decayed to now, JSON-ready and sorted."""
        now = self._clock()
        keys = sorted(k for k in self._cells if task_class is None or k[0] == task_class)
        return [self._view(*key, now) for key in keys]

    def _view(self, task_class: str, route: str, now: float) -> Json:
        cell = self._cells[task_class, route]
        s = cell.stats(now, self._inv_h)
        return {
            "task_class": task_class,
            "route": route,
            "count": s.count,
            "n": round(s.n, 4),
            "successes": round(s.successes, 4),
            "failures": round(s.failures, 4),
            "success_rate": _round(s.success_rate),
            "recent_n": round(s.recent_successes + s.recent_failures, 4),
            "recent_success_rate": _round(s.recent_success_rate),
            "latency_ms": _ms(s.latency_log_mean),
            "latency_p90_ms": _ms(s.latency_log_mean, s.latency_log_var),
            "latency_log_sd": round(math.sqrt(s.latency_log_var), 4),
            "ttft_ms": _ms(s.ttft_log_mean),
            "ttft_p90_ms": _ms(s.ttft_log_mean, s.ttft_log_var),
            "cost_usd": _round(s.cost, 8),
            "feedback": _round(s.feedback),
            "feedback_n": round(s.feedback_weight, 4),
            "errors": {k: round(v, 4) for k, v in cell.decayed_errors(now, self._inv_h).items()},
            "updated_at": s.updated_at,
            "half_life_s": self.half_life_s,
        }


#: z of the normal's 90th percentile.
_Z90 = 1.2815515655446004


def _ms(log_mean: float | None, log_var: float | None = None) -> float | None:
    """A geometric mean in ms, or with a variance the log-normal's 90th percentile."""
    if log_mean is None:
        return None
    z = 0.0 if log_var is None else _Z90 * math.sqrt(log_var)
    return round(math.exp(log_mean + z), 3)


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)
