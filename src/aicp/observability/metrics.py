"""Prometheus metrics: a bus subscriber that counts, and gauges read at scrape time.

Each app has its own `CollectorRegistry`; nothing here is module-level state.
Labels are bounded: route names (what the client asked for: a model, alias or
group), providers, deployments (`provider/model`), protocols, status codes and
small enums; never key ids, request ids or users. Route and deployment names
that configuration did not declare (a client may name any `provider/model`)
get their own label up to `OTHER_AFTER` distinct values, then `"other"`.

Under `aicp serve --workers N` the workers share nothing, so counters and
histograms use prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`,
set by `serve`): any worker answers a scrape with the sum over all of them.
Gauges that are read at scrape time in one process are then written by each
worker every second instead (docs/observability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

import aicp
from aicp.observability.events import Event
from aicp.observability.series import (
    Collector,
    CounterFamily,
    CounterFamilyLike,
    Counting,
    HistogramFamily,
    HistogramFamilyLike,
    Observing,
)

if TYPE_CHECKING:
    from aicp.config import Settings
    from aicp.plane.path import Path
    from aicp.reliability.health import DeploymentHealth
    from aicp.routing.router import Router

#: The text format every Prometheus version reads (our names need none of 1.0.0's escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Distinct undeclared route or deployment names before the rest are counted as "other".
OTHER_AFTER = 100
#: Seconds between a worker's writes of its gauges in multiprocess mode.
REFRESH_S = 1.0

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BREAKER_STATES = ("closed", "half_open", "open")


@dataclass(frozen=True, slots=True)
class Readings:
    """What the scrape-time gauges read; each callable is cheap and never blocks."""

    breakers: Callable[[], Mapping[str, DeploymentHealth]] = dict
    active_streams: Callable[[], int] = int
    in_flight: Callable[[], int] = int
    receipt_queue: Callable[[], int] = int


class _Bounded:
    """A label value as is while few distinct ones were seen, else `"other"`."""

    __slots__ = ("cap", "seen")

    def __init__(self, declared: Iterable[str], cap: int) -> None:
        self.seen = set(declared)
        self.cap = len(self.seen) + cap

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) < self.cap:
            self.seen.add(value)
            return value
        return "other"


@dataclass(slots=True)
class _RouteSeries:
    """The children of one (route, provider), made once: `labels()` is the slow part."""

    duration: Observing
    ttft: Observing
    input: Counting
    output: Counting
    cached: Counting
    cost: Counting
    retries: Counting
    fallbacks: Counting


@dataclass(slots=True)
class _Caches:
    requests: dict[tuple[str, ...], Counting] = field(default_factory=dict)
    routes: dict[tuple[str, str], _RouteSeries] = field(default_factory=dict)


class Metrics:
    """Subscribe it to the bus (local events only: another process counts its own)."""

    def __init__(
        self,
        readings: Readings,
        declared_routes: Iterable[str] = (),
        declared_deployments: Iterable[str] = (),
        multiprocess_dir: str | None = None,
    ) -> None:
        self.readings = readings
        self.multiprocess_dir = multiprocess_dir
        #: What GET /metrics exposes.
        self.registry = CollectorRegistry(auto_describe=True)
        # One process: lock-free families (observability/series.py). Multiprocess mode:
        # prometheus_client's metrics, whose values live in files that the collector
        # below reads for every worker; registered here as well, they would count twice.
        local: list[CounterFamily | HistogramFamily] = []
        self._route = _Bounded(declared_routes, OTHER_AFTER)
        self._deployment = _Bounded(declared_deployments, OTHER_AFTER)
        self._small = _Bounded((), 50)
        self._caches = _Caches()
        self._task: asyncio.Task[None] | None = None
        rp = ("route", "provider")

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterFamilyLike:
            if multiprocess_dir:
                return Counter(name, doc, labels, registry=None)
            family = CounterFamily(name, doc, labels)
            local.append(family)
            return family

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> HistogramFamilyLike:
            if multiprocess_dir:
                return Histogram(name, doc, labels, buckets=buckets, registry=None)
            family = HistogramFamily(name, doc, labels, buckets)
            local.append(family)
            return family

        self.requests = counter(
            "aicp_requests_total",
            "Requests answered, by route, provider, deployment, ingress protocol and HTTP code.",
            ("route", "provider", "deployment", "protocol", "code"),
        )
        self.duration = histogram(
            "aicp_request_duration_seconds",
            "Time from the request's arrival until it was answered (a stream: ended), in seconds.",
            rp,
            DURATION_BUCKETS,
        )
        self.ttft = histogram(
            "aicp_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first body byte, in seconds.",
            rp,
            TTFT_BUCKETS,
        )
        self.tokens = counter(
            "aicp_tokens_total",
            "Tokens, by type: input (prompt) or output (completion).",
            (*rp, "type"),
        )
        self.cached_tokens = counter(
            "aicp_cached_input_tokens_total", "Input tokens the provider served from its cache.", rp
        )
        self.cost = counter("aicp_cost_usd_total", "Cost of the requests in US dollars.", rp)
        self.retries = counter(
            "aicp_retries_total", "Upstream attempts that repeated a deployment.", rp
        )
        self.fallbacks = counter(
            "aicp_fallbacks_total", "Moves to a later deployment of the route's chain.", rp
        )
        self.cache_hits = counter(
            "aicp_cache_hits_total",
            "Requests answered from the cache (exact or semantic).",
            ("kind",),
        )
        self.compression = histogram(
            "aicp_compression_ratio",
            "Tokens sent upstream over tokens before compression, per compressed request.",
            ("route",),
            RATIO_BUCKETS,
        )
        self.blocked = counter(
            "aicp_blocked_routes_total", "Requests whose every route policy forbade.", ("route",)
        )
        self.overrides = counter(
            "aicp_policy_overrides_total", "Forced routes and bypassed policies.", ("route",)
        )
        self.budget_rejections = counter(
            "aicp_budget_rejections_total",
            "Requests refused by a hard budget limit.",
            ("scope", "period"),
        )
        self.ratelimit_rejections = counter(
            "aicp_ratelimit_rejections_total",
            "Requests refused by an RPM or TPM limit.",
            ("scope", "limit"),
        )
        self.guardrail_triggers = counter(
            "aicp_guardrail_triggers_total",
            "Guardrail findings, by guardrail and action.",
            ("guardrail", "action"),
        )
        self.breaker_opens = counter(
            "aicp_breaker_opened_total",
            "Times a deployment's circuit breaker opened.",
            ("deployment",),
        )
        info = Gauge(
            "aicp_info",
            "The running aicp version.",
            ("version",),
            registry=None if multiprocess_dir else self.registry,
            multiprocess_mode="max",
        )
        info.labels(aicp.__version__).set(1)
        self._handlers: dict[str, Callable[[Event], None]] = {
            "llm.request.completed": self._request,
            "llm.request.failed": self._request,
            "budget.exceeded": self._budget,
            "ratelimit.exceeded": self._ratelimit,
            "guardrail.triggered": self._guardrail,
            "policy.denied": self._blocked,
            "policy.override": self._override,
            "breaker.opened": self._breaker_opened,
            "cache.hit": lambda e: self.cache_hit(str(e.data.get("kind") or "")),
            "compression.applied": lambda e: self.compressed(
                e.model or "",
                int(e.data.get("tokens_before") or 0),
                int(e.data.get("tokens_after") or 0),
            ),
        }
        if multiprocess_dir:
            self._multiprocess_setup(multiprocess_dir)
        else:
            self.registry.register(Collector(local))
            self.registry.register(_Live(readings, self._deployment))

    # --- the subscriber ---------------------------------------------------------

    @property
    def types(self) -> frozenset[str]:
        """The event types this counts (what it subscribes to)."""
        return frozenset(self._handlers)

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event)

    def _request(self, event: Event) -> None:
        d = event.data
        route = self._route(d.get("route") or "")
        provider = d.get("provider") or ""
        key = (
            route,
            provider,
            self._deployment(d.get("deployment") or ""),
            d.get("protocol") or "",
            str(d.get("status") or 0),
        )
        caches = self._caches
        child = caches.requests.get(key)
        if child is None:
            child = caches.requests[key] = self.requests.labels(*key)
        child.inc()
        s = caches.routes.get((route, provider))
        if s is None:
            s = caches.routes[(route, provider)] = self._route_series(route, provider)
        s.duration.observe(d["latency_ms"] / 1000)
        ttft = d.get("ttft_ms")
        if ttft is not None:
            s.ttft.observe(ttft / 1000)
        if n := d.get("prompt_tokens"):
            s.input.inc(n)
        if n := d.get("completion_tokens"):
            s.output.inc(n)
        if n := d.get("cached_tokens"):
            s.cached.inc(n)
        if cost := d.get("cost_usd"):
            s.cost.inc(cost)
        if n := d.get("retries"):
            s.retries.inc(n)
        if n := d.get("fallbacks"):
            s.fallbacks.inc(n)

    def _route_series(self, route: str, provider: str) -> _RouteSeries:
        rp = (route, provider)
        return _RouteSeries(
            self.duration.labels(*rp),
            self.ttft.labels(*rp),
            self.tokens.labels(*rp, "input"),
            self.tokens.labels(*rp, "output"),
            self.cached_tokens.labels(*rp),
            self.cost.labels(*rp),
            self.retries.labels(*rp),
            self.fallbacks.labels(*rp),
        )

    def _budget(self, event: Event) -> None:
        d = event.data
        self.budget_rejections.labels(
            self._small(str(d.get("scope") or "")), self._small(str(d.get("period") or ""))
        ).inc()

    def _ratelimit(self, event: Event) -> None:
        d = event.data
        self.ratelimit_rejections.labels(
            self._small(str(d.get("scope") or "")), self._small(str(d.get("limit") or ""))
        ).inc()

    def _guardrail(self, event: Event) -> None:
        d = event.data
        name = d.get("guardrail") or d.get("detector") or ""
        self.guardrail_triggers.labels(
            self._small(str(name)), self._small(str(d.get("action") or ""))
        ).inc()

    def _blocked(self, event: Event) -> None:
        self.blocked.labels(self._route(event.model or "")).inc()

    def _override(self, event: Event) -> None:
        self.overrides.labels(self._route(event.model or "")).inc()

    def _breaker_opened(self, event: Event) -> None:
        self.breaker_opens.labels(self._deployment(str(event.data.get("deployment") or ""))).inc()

    # --- for stages that arrive later -------------------------------------------------

    def cache_hit(self, kind: str) -> None:
        """The recall stage answered from the cache; `kind` is "exact" or "semantic"."""
        self.cache_hits.labels(self._small(kind)).inc()

    def compressed(self, route: str, before: int, after: int) -> None:
        """The compress stage sent `after` tokens instead of `before`."""
        if before > 0:
            self.compression.labels(self._route(route)).observe(after / before)

    # --- exposition ----------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def start(self) -> None:
        if self.multiprocess_dir and self._task is None:
            self._task = asyncio.create_task(self._refresh_loop(), name="aicp-metrics-gauges")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    # --- multiprocess mode ----------------------------------------------------------

    def _multiprocess_setup(self, path: str) -> None:
        from prometheus_client import multiprocess

        os.makedirs(path, exist_ok=True)
        multiprocess.MultiProcessCollector(self.registry, path=path)  # type: ignore[no-untyped-call]

        def gauge(name: str, doc: str, labels: tuple[str, ...] = (), mode: str = "livesum") -> Any:
            return Gauge(name, doc, labels, registry=None, multiprocess_mode=mode)  # type: ignore[arg-type]

        self._mp_streams = gauge("aicp_active_streams", _DOCS["aicp_active_streams"])
        self._mp_in_flight = gauge("aicp_requests_in_flight", _DOCS["aicp_requests_in_flight"])
        self._mp_queue = gauge("aicp_receipt_queue_depth", _DOCS["aicp_receipt_queue_depth"])
        # "livemax": a deployment counts as open when any worker's breaker is open.
        self._mp_breakers = gauge(
            "aicp_breaker_state", _DOCS["aicp_breaker_state"], ("deployment", "state"), "livemax"
        )
        self._refresh()

    def _refresh(self) -> None:
        r = self.readings
        self._mp_streams.set(r.active_streams())
        self._mp_in_flight.set(r.in_flight())
        self._mp_queue.set(r.receipt_queue())
        for deployment, state in _breaker_states(r, self._deployment):
            for s in BREAKER_STATES:
                self._mp_breakers.labels(deployment, s).set(1 if s == state else 0)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            self._refresh()


_DOCS = {
    "aicp_active_streams": "Streamed responses being sent to clients now.",
    "aicp_requests_in_flight": "Requests inside the request path now.",
    "aicp_receipt_queue_depth": "Receipts waiting for the group-commit writer.",
    "aicp_breaker_state": "Circuit breaker state per deployment: 1 for the current state.",
}


def _breaker_states(r: Readings, bound: _Bounded) -> Iterator[tuple[str, str]]:
    for key, health in r.breakers().items():
        deployment = bound(key)
        if deployment != "other":
            yield deployment, health.breaker.state


class _Live:
    """The gauges read when Prometheus scrapes (one process)."""

    def __init__(self, readings: Readings, bound: _Bounded) -> None:
        self.readings = readings
        self.bound = bound

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(sample=False))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(sample=True))

    def _families(self, sample: bool) -> list[Metric]:
        r = self.readings
        out: list[Metric] = []
        for name, read in (
            ("aicp_active_streams", r.active_streams),
            ("aicp_requests_in_flight", r.in_flight),
            ("aicp_receipt_queue_depth", r.receipt_queue),
        ):
            out.append(GaugeMetricFamily(name, _DOCS[name], value=read() if sample else None))
        breakers = GaugeMetricFamily(
            "aicp_breaker_state", _DOCS["aicp_breaker_state"], labels=("deployment", "state")
        )
        if sample:
            for deployment, state in _breaker_states(r, self.bound):
                for s in BREAKER_STATES:
                    breakers.add_metric((deployment, s), 1 if s == state else 0)
        out.append(breakers)
        return out


def create_metrics(
    settings: Settings, router: Router, path: Path, receipts: object | None = None
) -> Metrics | None:
    """The app's metrics over its router, path and receipt log, or None when turned off."""
    if not settings.observability.metrics:
        return None
    readings = Readings(
        breakers=router.health,
        active_streams=lambda: path.active_streams,
        in_flight=lambda: path.in_flight,
        receipt_queue=lambda: int(getattr(receipts, "queue_depth", 0)),
    )
    return Metrics(
        readings,
        declared_routes=[*router.entries, *router.aliases],
        declared_deployments=[d.key for e in router.entries.values() for d in e.deployments],
        multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
    )


def prepare_multiprocess(data_dir: str) -> str:
    """For `serve --workers N`: an empty PROMETHEUS_MULTIPROC_DIR that the workers inherit.

    A directory the operator named is kept (only its old value files are removed, as
    prometheus_client asks between runs); else one is made in the data directory.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(data_dir, "prometheus")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path
