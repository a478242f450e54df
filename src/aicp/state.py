"""Everything the app holds while it runs, made in its lifespan and passed down."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aicp.accounting.auth import KeyAuthenticate
from aicp.accounting.budgets import BudgetService, BudgetStage, SettleStage
from aicp.accounting.keys import KeyService, load_pepper
from aicp.accounting.prices import Prices
from aicp.accounting.ratelimit import RateLimiter
from aicp.accounting.ratelimit_stages import LimitsStage, MeterStage, deployment_limits
from aicp.config import Settings
from aicp.observability.events import EventBus
from aicp.plane.execute import Execute
from aicp.plane.path import Path
from aicp.plane.stages import Passthrough, RouteStage
from aicp.providers import registry
from aicp.providers.base import Provider
from aicp.providers.http import HttpClient
from aicp.reliability.retry import RetryBudget
from aicp.routing.router import Router
from aicp.storage.db import Database
from aicp.storage.db import database_url as storage_url
from aicp.storage.migrate import upgrade
from aicp.storage.redis import connect_redis

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
    ready: bool = False

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()
        await self.keys.aclose()
        await self.budgets.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.aclose()


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


def build_path(settings: Settings, sv: Services) -> Path:
    server = settings.server
    return Path(
        request=[
            KeyAuthenticate(sv.keys, server.master_key, server.allow_forced_routes),
            Passthrough("classify"),
            Passthrough("guard_input"),
            Passthrough("policy"),
            Passthrough("recall"),
            Passthrough("compress"),
            RouteStage(sv.router),
            LimitsStage(sv.limiter, deployment_limits(settings)),
            BudgetStage(sv.budgets, sv.prices),
            Execute(settings.reliability, sv.budget),
        ],
        response=[
            Passthrough("guard_output"),
            SettleStage(sv.budgets, sv.prices),
            MeterStage(sv.limiter),
            Passthrough("record"),
            Passthrough("learn"),
        ],
    )


async def open_database(settings: Settings) -> Database:
    """The database of `settings`, migrated to the current schema."""
    db = Database(database_url(settings))
    await upgrade(db)
    return db


def database_url(settings: Settings) -> str:
    """AICP_DATABASE_URL, else SQLite in the data directory (created if missing)."""
    return storage_url(settings.storage)


async def create_state(settings: Settings, http: HttpClient | None = None) -> AppState:
    events = EventBus()
    http = http or HttpClient()
    providers = {name: registry.create(name, ps, http) for name, ps in settings.providers.items()}
    catalog = await discover(providers)
    router = Router(settings, providers, catalog)
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
    services = Services(router, budget, keys, limiter, budgets, prices, events)
    path = build_path(settings, services)
    return AppState(
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
    )
