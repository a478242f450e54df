"""Liveness, readiness, the model list and the providers' health view."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from aicp.api.errors import error_body
from aicp.errors import AicpError
from aicp.plane.exchange import Principal
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


async def check_key(request: Request, admin: bool = False) -> Principal:
    """The caller's principal (api/authz.py); with `admin`, only an admin gets through."""
    from aicp.api import authz

    principal = await authz.caller(request)
    if admin:
        authz.require_admin(principal)
    return principal


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    state = getattr(request.app.state, "aicp", None)
    if state is None or not state.ready:
        return json_response({"status": "starting"}, 503)
    return json_response({"status": "ready", "providers": sorted(state.providers)})


async def models(request: Request) -> Response:
    try:
        principal = await check_key(request)
    except AicpError as err:
        return error_response(err)
    state = state_of(request)
    now = int(time.time())
    data = []
    allowed = set(principal.models)
    for name in state.router.model_names():
        if allowed and name not in allowed:
            continue
        owner = name.split("/", 1)[0] if "/" in name else "aicp"
        data.append({"id": name, "object": "model", "created": now, "owned_by": owner})
    return json_response({"object": "list", "data": data})


async def providers_health(request: Request) -> Response:
    try:
        await check_key(request, admin=True)
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
