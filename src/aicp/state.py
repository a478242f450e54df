"""Everything the app holds while it runs, made in its lifespan and passed down."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aicp.accounting.auth import KeyAuthenticate
from aicp.accounting.budgets import BudgetService, BudgetStage, SettleStage
from aicp.accounting.keys import KeyService, load_pepper
from aicp.accounting.prices import Prices
from aicp.accounting.ratelimit import RateLimiter
from aicp.accounting.ratelimit_stages import LimitsStage, MeterStage, deployment_limits
from aicp.config import Settings
from aicp.observability.events import EventBus
from aicp.observability.fanout import RedisFanout
from aicp.observability.logging import RequestLog
from aicp.observability.metrics import Metrics, create_metrics
from aicp.observability.tracing import Tracing, create_tracing
from aicp.plane.announce import Started
from aicp.plane.execute import Execute
from aicp.plane.path import Path
from aicp.plane.stages import Passthrough, RouteStage
from aicp.providers import registry
from aicp.providers.base import Provider
from aicp.providers.http import HttpClient
from aicp.receipts.log import ReceiptLog
from aicp.receipts.signing import load_signer
from aicp.receipts.stage import RecordStage
from aicp.reliability.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from aicp.reliability.retry import RetryBudget
from aicp.routing.router import BreakerListener, Router
from aicp.storage.db import Database
from aicp.storage.db import database_url as storage_url
from aicp.storage.migrate import upgrade
from aicp.storage.redis import connect_redis

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from aicp.memory.cache import CacheStore
    from aicp.memory.projects import MemoryStore
    from aicp.memory.route_service import RouteService
    from aicp.memory.semantic_layer import SemanticLayer
    from aicp.pipeline.service import PipelineService
    from aicp.policy.service import PolicyService

log = logging.getLogger("aicp")

#: How long start-up waits for a provider's model list before going on without it.
DISCOVERY_TIMEOUT_S = 5.0


@dataclass(slots=True)
class AppState:
    settings: Settings
    http: HttpClient
    providers: dict[str, Provider]
    router: Router
    path: Path
    budget: RetryBudget
    db: Database
    redis: Any
    keys: KeyService
    limiter: RateLimiter
    budgets: BudgetService
    prices: Prices
    events: EventBus
    receipts: ReceiptLog
    ready: bool = False
    #: Events to and from the other gateway processes, when Redis is configured.
    fanout: RedisFanout | None = None
    #: Prometheus metrics (observability.metrics) and traces (OTEL_EXPORTER_OTLP_ENDPOINT).
    metrics: Metrics | None = None
    tracing: Tracing | None = None
    policy: PolicyService | None = None
    #: The answer cache (memory/cache.py), when any cache is switched on.
    cache: CacheStore | None = None
    #: Project and global memory (memory/projects.py).
    memory: MemoryStore | None = None
    #: Route memory and the learned strategy (memory/route_service.py).
    routes: RouteService | None = None
    #: Pipelines, the model registry and the aliases it drives (pipeline/service.py).
    pipelines: PipelineService | None = None

    async def aclose(self) -> None:
        if self.pipelines is not None:
            await self.pipelines.aclose()
        if self.policy is not None:
            await self.policy.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        if self.routes is not None:
            await self.routes.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()
        await self.keys.aclose()
        await self.budgets.aclose()
        await self.receipts.aclose()
        if self.fanout is not None:
            await self.fanout.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.aclose()
        if self.metrics is not None:
            await self.metrics.aclose()
        if self.tracing is not None:
            await self.tracing.aclose()


async def discover(providers: dict[str, Provider]) -> dict[str, list[str]]:
    """Each provider's model list; a provider that cannot answer lists nothing."""

    async def one(name: str, provider: Provider) -> tuple[str, list[str]]:
        try:
            async with asyncio.timeout(DISCOVERY_TIMEOUT_S):
                return name, await provider.list_models()
        except Exception as exc:
            log.warning("provider %s: could not list models: %s", name, type(exc).__name__)
            return name, []

    pairs = await asyncio.gather(*(one(n, p) for n, p in providers.items()))
    return dict(pairs)


@dataclass(slots=True)
class Services:
    """What the stages of the path are built from."""

    router: Router
    budget: RetryBudget
    keys: KeyService
    limiter: RateLimiter
    budgets: BudgetService
    prices: Prices
    events: EventBus
    receipts: ReceiptLog
    tracing: Tracing | None = None
    policy: PolicyService | None = None
    cache: CacheStore | None = None
    memory: MemoryStore | None = None
    routes: RouteService | None = None
    semantic: SemanticLayer | None = None


def build_path(settings: Settings, sv: Services) -> Path:
    from aicp.compress.stage import CompressStage
    from aicp.guardrails.output import GuardOutput
    from aicp.guardrails.stages import GuardInput
    from aicp.memory.stages import LearnStage, RecallStage
    from aicp.policy.stage import PolicyStage
    from aicp.trust.stage import ClassifyStage

    server = settings.server
    return Path(
        request=[
            KeyAuthenticate(sv.keys, server.master_key, server.allow_forced_routes),
            Started(sv.events),
            ClassifyStage(settings.trust),
            GuardInput(settings.guardrails, sv.events),
            PolicyStage(
                sv.policy.engine if sv.policy is not None else None,
                sv.router,
                sv.budgets,
                sv.events,
                settings.policy.production_tools,
            ),
            RecallStage(
                sv.cache,
                settings.cache,
                sv.router,
                sv.events,
                sv.memory,
                settings.memory,
                sv.semantic,
            ),
            CompressStage(settings.compression, sv.events, sv.router)
            if settings.compression.anywhere
            else Passthrough("compress"),
            RouteStage(sv.router, sv.events, sv.routes),
            LimitsStage(sv.limiter, deployment_limits(settings), sv.events),
            BudgetStage(sv.budgets, sv.prices, sv.events),
            Execute(settings.reliability, sv.budget, sv.events, sv.tracing),
            # Before the first byte goes out (a response stage would be too late).
            GuardOutput(settings.guardrails, sv.events),
        ],
        response=[
            SettleStage(sv.budgets, sv.prices, sv.events),
            MeterStage(sv.limiter),
            RecordStage(sv.receipts, settings.receipts),
            LearnStage(sv.cache, settings.cache, sv.routes, sv.semantic),
        ],
        tracing=sv.tracing,
    )


_BREAKER_EVENTS = {OPEN: "breaker.opened", HALF_OPEN: "breaker.half_open", CLOSED: "breaker.closed"}


def breaker_events(events: EventBus) -> BreakerListener:
    """Breaker changes -> `breaker.opened`, `breaker.half_open`, `breaker.closed`."""

    def changed(deployment: str, breaker: Breaker, previous: str) -> None:
        kind = _BREAKER_EVENTS[breaker.state]
        if not events.wants(kind):
            return
        data: dict[str, Any] = {
            "deployment": deployment,
            "previous": previous,
            "trips": breaker.trips,
        }
        if breaker.state == OPEN:
            total, failed = breaker.counts()
            data.update(window_requests=total, window_failures=failed)
            data["open_s"] = breaker.settings.open_s
        model = deployment.partition("/")[2] or None
        events.emit(kind, data, model=model)

    return changed


async def open_database(settings: Settings) -> Database:
    """The database of `settings`, migrated to the current schema."""
    db = Database(database_url(settings))
    await upgrade(db)
    return db


def database_url(settings: Settings) -> str:
    """AICP_DATABASE_URL, else SQLite in the data directory (created if missing)."""
    return storage_url(settings.storage)


async def create_state(
    settings: Settings, http: HttpClient | None = None, span_exporter: SpanExporter | None = None
) -> AppState:
    events = EventBus()
    # First: a policy directory that cannot load stops start-up before anything runs.
    from aicp.policy.service import PolicyService

    policy = PolicyService(settings.policy, events) if settings.policy.enabled else None
    tracing = create_tracing(settings, span_exporter)
    http = http or HttpClient()
    providers = {name: registry.create(name, ps, http) for name, ps in settings.providers.items()}
    catalog = await discover(providers)
    router = Router(settings, providers, catalog, on_breaker=breaker_events(events))
    budget = RetryBudget(settings.reliability)
    db = await open_database(settings)
    redis = await connect_redis(settings.storage.redis_url)
    keys = KeyService(db, redis, load_pepper(settings.storage))
    await keys.start()
    limiter = RateLimiter(redis)
    budgets = BudgetService(db, redis)
    await budgets.start()
    prices = Prices(settings)
    prices.warm(
        (d for entry in router.entries.values() for d in entry.deployments),
        any_priced_provider=any(not p.local for p in providers.values()),
    )
    rs = settings.receipts
    signer = load_signer(rs.signing_key, settings.storage.data_dir, rs.origin)
    receipts = ReceiptLog(db, signer, rs, events)
    receipts.start()
    cache = semantic = None
    if settings.cache.exact.anywhere or settings.cache.semantic.anywhere:
        from aicp.memory.cache import CacheStore

        cache = CacheStore(db, settings.cache)
        if settings.cache.semantic.anywhere:
            from aicp.memory.semantic_layer import SemanticLayer

            semantic = await SemanticLayer.create(settings.cache.semantic, router)
            cache.on_add, cache.on_remove = semantic.indexed, semantic.removed
        await cache.start()
    from aicp.memory.projects import MemoryStore

    memory = MemoryStore(db, settings.memory)
    from aicp.memory.route_service import RouteService

    routes = RouteService(db, settings.learning)
    await routes.start()
    services = Services(
        router,
        budget,
        keys,
        limiter,
        budgets,
        prices,
        events,
        receipts,
        tracing,
        policy,
        cache,
        memory,
        routes,
        semantic,
    )
    path = build_path(settings, services)
    state = AppState(
        settings,
        http,
        providers,
        router,
        path,
        budget,
        db,
        redis,
        keys,
        limiter,
        budgets,
        prices,
        events,
        receipts,
    )
    state.policy = policy
    state.cache = cache
    state.memory = memory
    state.routes = routes
    from aicp.pipeline.service import PipelineService

    state.pipelines = PipelineService(state)
    await state.pipelines.start()
    if policy is not None:
        policy.start()
    if redis is not None:
        state.fanout = RedisFanout(events, redis)
        state.fanout.start()
    observe(state)
    return state


def observe(state: AppState) -> None:
    """Logs and metrics subscribe to the bus (local events: each process counts its own)."""
    ob = state.settings.observability
    state.tracing = state.path.tracing
    state.metrics = create_metrics(state.settings, state.router, state.path, state.receipts)
    if state.metrics is not None:
        state.events.subscribe(state.metrics, types=state.metrics.types)
        state.metrics.start()
    if ob.logging.requests:
        state.events.subscribe(RequestLog(ob.logging), types=RequestLog.types)
