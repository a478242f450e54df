"""GET /metrics: the Prometheus text exposition.

Open, like every Prometheus exporter: it holds aggregates over bounded labels
(routes, providers, deployments, status codes), never keys, users or request
content. Where the gateway's port is public, keep /metrics off the public
listener at the reverse proxy (docs/observability.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.observability.metrics import CONTENT_TYPE


async def metrics(request: Request) -> Response:
    state = getattr(request.app.state, "aicp", None)
    if state is None:
        return Response("the gateway is starting\n", 503, media_type="text/plain")
    if state.metrics is None:
        return Response("metrics are turned off (observability.metrics)\n", 404)
    return Response(state.metrics.exposition(), headers={"content-type": CONTENT_TYPE})


routes = [Route("/metrics", metrics, methods=["GET"])]
