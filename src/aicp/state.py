"""Everything the app holds while it runs, made in its lifespan and passed down."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aicp.config import Settings
from aicp.plane.execute import Execute
from aicp.plane.path import Path
from aicp.plane.stages import Authenticate, Passthrough, RouteStage
from aicp.providers import registry
from aicp.providers.base import Provider
from aicp.providers.http import HttpClient
from aicp.reliability.retry import RetryBudget
from aicp.routing.router import Router

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
    ready: bool = False

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()


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


def build_path(settings: Settings, router: Router, budget: RetryBudget) -> Path:
    server = settings.server
    return Path(
        request=[
            Authenticate(server.master_key, server.allow_forced_routes),
            Passthrough("classify"),
            Passthrough("guard_input"),
            Passthrough("policy"),
            Passthrough("recall"),
            Passthrough("compress"),
            RouteStage(router),
            Execute(settings.reliability, budget),
        ],
        response=[
            Passthrough("guard_output"),
            Passthrough("record"),
            Passthrough("learn"),
        ],
    )


async def create_state(settings: Settings, http: HttpClient | None = None) -> AppState:
    http = http or HttpClient()
    providers = {name: registry.create(name, ps, http) for name, ps in settings.providers.items()}
    catalog = await discover(providers)
    router = Router(settings, providers, catalog)
    budget = RetryBudget(settings.reliability)
    return AppState(settings, http, providers, router, build_path(settings, router, budget), budget)
