"""create_app(settings): the ASGI app, wired in its lifespan.

The LLM endpoints are looked up in a dict and served by raw ASGI handlers
(the hot path); everything else goes to a Starlette app, which also runs the
lifespan. Nothing happens at import time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting.auth import check_exposure
from aicp.api import (
    admin,
    cache,
    events,
    identity,
    learning,
    memory,
    pipeline_events,
    pipelines,
    receipts,
    registry,
    replay,
    spend,
)
from aicp.api import metrics as metrics_api
from aicp.api.asgi import Message, Receive, Scope, Send, header_dict, request_id
from aicp.api.errors import error_body
from aicp.api.gateway import Endpoint, Handler, Validator
from aicp.api.simulate import SIMULATE_PATHS
from aicp.config import Settings, load_settings
from aicp.errors import AicpError
from aicp.observability.logging import configure_logging
from aicp.protocol import validate
from aicp.providers.base import ANTHROPIC, OPENAI, RESPONSES
from aicp.state import AppState, create_state

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("aicp")


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: AppState | None = None
        self.hot: dict[tuple[str, str], Handler] = {}
        self._span_exporter: SpanExporter | None = None
        self.web = Starlette(
            routes=[
                Route("/health", admin.health),
                Route("/ready", admin.ready),
                Route("/v1/models", admin.models),
                Route("/models", admin.models),
                Route("/v1/providers/health", admin.providers_health),
                *events.routes,
                *metrics_api.routes,
                *identity.routes,
                *spend.routes,
                *receipts.routes,
                *replay.routes,
                *cache.routes,
                *memory.routes,
                *learning.routes,
                *pipelines.routes,
                *pipeline_events.routes,
                *registry.routes,
                # The hot paths are served above; these routes only answer a wrong
                # method (405) and a request that arrives before start-up finished.
                *(Route(path, _starting, methods=["POST"]) for path in HOT_PATHS),
            ],
            lifespan=self._lifespan,
            exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
        )

    def export_spans_to(self, exporter: SpanExporter) -> None:
        """Send this app's trace spans to `exporter` (tests: the SDK's InMemorySpanExporter),
        with or without OTEL_EXPORTER_OTLP_ENDPOINT. Call before the app starts."""
        self._span_exporter = exporter

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        check_exposure(self.settings)
        # Again for worker processes and embedding servers; a no-op after `aicp serve`.
        configure_logging(self.settings.observability.logging)
        state = await create_state(self.settings, span_exporter=self._span_exporter)
        self.state = state
        app.state.aicp = state
        self.hot = _hot_routes(state)
        state.ready = True
        log.info("aicp ready: providers %s", ", ".join(sorted(state.providers)))
        try:
            yield
        finally:
            state.ready = False
            self.hot = {}
            await state.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.hot.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
            await self.web(scope, receive, _with_request_id(scope, send))
            return
        await self.web(scope, receive, send)


#: The LLM endpoints: path -> (protocol, operation, body check).
_ENDPOINTS: dict[str, tuple[str, str, Validator]] = {
    "/chat/completions": (OPENAI, "chat", validate.chat),
    "/embeddings": (OPENAI, "embeddings", validate.embeddings),
    "/responses": (RESPONSES, "chat", validate.responses),
    "/messages": (ANTHROPIC, "chat", validate.messages),
    "/messages/count_tokens": (ANTHROPIC, "count_tokens", validate.count_tokens),
}
_PREFIXES = ("/v1", "")

#: The LLM endpoints, each with and without the /v1 prefix.
HOT_PATHS = (
    *(prefix + path for prefix in _PREFIXES for path in _ENDPOINTS),
    *SIMULATE_PATHS,
)


def _protocol_of(path: str) -> str:
    return ANTHROPIC if path.endswith(("/messages", "/messages/count_tokens")) else OPENAI


def _hot_routes(state: AppState) -> dict[tuple[str, str], Handler]:
    routes: dict[tuple[str, str], Handler] = {}
    for path, (protocol, operation, check) in _ENDPOINTS.items():
        endpoint = Endpoint(state, protocol, operation, check)
        for prefix in _PREFIXES:
            routes[("POST", prefix + path)] = endpoint
    for path, target in SIMULATE_PATHS.items():
        protocol, operation, check = _ENDPOINTS[target]
        routes[("POST", path)] = Endpoint(state, protocol, operation, check, simulate_only=True)
    return routes


def _with_request_id(scope: Scope, send: Send) -> Send:
    rid = request_id(header_dict(scope)).encode()

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
        await send(message)

    return wrapped


async def _http_error(request: Request, exc: HTTPException) -> Response:
    protocol = _protocol_of(request.url.path)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        message = str(exc.detail)
    err = AicpError(message, status=exc.status_code)
    err.kind = kind
    return Response(
        error_body(err, protocol),
        exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


async def _starting(request: Request) -> Response:
    err = AicpError("the gateway is starting; try again shortly", status=503)
    return Response(
        error_body(err, _protocol_of(request.url.path)),
        503,
        headers={"retry-after": "1"},
        media_type="application/json",
    )


def create_app(settings: Settings | None = None) -> App:
    """The ASGI app for `settings` (default: environment and AICP_CONFIG)."""
    return App(settings or load_settings())


def factory() -> App:
    """Entry point for `uvicorn --factory aicp.app:factory` and worker processes."""
    app = create_app()
    # Before uvicorn's own start-up lines, which the lifespan would come too late for.
    configure_logging(app.settings.observability.logging)
    return app
