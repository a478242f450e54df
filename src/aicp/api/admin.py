"""Liveness, readiness, the model list and the providers' health view."""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from aicp.api.errors import error_body
from aicp.errors import AicpError, AuthenticationFailed, PermissionDenied
from aicp.plane.stages import bearer
from aicp.protocol.jsonutil import dumps

if TYPE_CHECKING:
    from aicp.state import AppState


def json_response(data: object, status: int = 200) -> Response:
    return Response(dumps(data), status, media_type="application/json")


def error_response(err: AicpError, protocol: str = "openai") -> Response:
    return Response(
        error_body(err, protocol), err.status, headers=err.headers, media_type="application/json"
    )


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.aicp
    return state


def check_key(request: Request, admin: bool = False) -> None:
    """Until virtual keys exist: when a master key is set, it is required here too."""
    master = state_of(request).settings.server.master_key
    if master is None:
        return
    headers = {k: v for k, v in request.headers.items()}
    token = bearer(headers)
    if token is None or not hmac.compare_digest(token.encode(), master.encode()):
        if token is None:
            raise AuthenticationFailed("no API key: send Authorization: Bearer <key>")
        raise (PermissionDenied("admin only") if admin else AuthenticationFailed("invalid key"))


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    state = getattr(request.app.state, "aicp", None)
    if state is None or not state.ready:
        return json_response({"status": "starting"}, 503)
    return json_response({"status": "ready", "providers": sorted(state.providers)})


async def models(request: Request) -> Response:
    try:
        check_key(request)
    except AicpError as err:
        return error_response(err)
    state = state_of(request)
    now = int(time.time())
    data = []
    for name in state.router.model_names():
        owner = name.split("/", 1)[0] if "/" in name else "aicp"
        data.append({"id": name, "object": "model", "created": now, "owned_by": owner})
    return json_response({"object": "list", "data": data})


async def providers_health(request: Request) -> Response:
    try:
        check_key(request, admin=True)
    except AicpError as err:
        return error_response(err)
    state = state_of(request)
    deployments = {key: h.view() for key, h in sorted(state.router.health().items())}
    budget = state.budget
    return json_response(
        {
            "providers": {
                name: {"type": state.settings.providers[name].type, "local": p.local}
                for name, p in sorted(state.providers.items())
            },
            "deployments": deployments,
            "retry_budget": {
                "active_requests": budget.active,
                "retries_in_flight": budget.retrying,
                "limit": budget.limit(),
            },
        }
    )
