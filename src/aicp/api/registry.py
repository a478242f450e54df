"""The model registry API: `/v1/registry/models/...` (docs/pipelines.md).

Reading is open to any key; registering, promoting and rolling back move what
a gateway alias serves, so they need an admin key. A promotion or rollback is
applied to this process's router before the answer, and to every other
gateway process within `registry.sync_s` (default 0.5 s).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.api.admin import json_response
from aicp.api.authz import caller, require_admin
from aicp.api.identity_http import body_of, endpoint
from aicp.api.identity_models import Body
from aicp.api.pipelines import service
from aicp.errors import RegistryNotFound

NAME = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class Register(Body):
    target: NAME
    params: dict[str, Any] = Field(default_factory=dict)
    alias: NAME | None = None
    run_id: Annotated[str, Field(max_length=64)] | None = None
    description: Annotated[str, Field(max_length=2000)] = ""
    #: "staging" points the staging alias at the new version.
    stage: Annotated[str, Field(pattern=r"^staging$")] | None = None


class Promote(Body):
    version: Annotated[str, Field(max_length=32, pattern=r"^[0-9]+$")] | None = None
    #: Promote what this alias points at (e.g. "staging").
    from_: Annotated[str | None, Field(alias="from", max_length=64)] = None


@endpoint
async def list_models(request: Request) -> Response:
    """Registered models with their versions, aliases and production version.
    ---
    summary: Registered models
    tags: [registry]
    responses:
      200: {description: "{data: [{name, alias, production, versions: [...]}]}"}
    """
    await caller(request)
    return json_response({"data": await service(request).registry_call("list")})


@endpoint
async def get_model(request: Request) -> Response:
    """One registered model.
    ---
    summary: A registered model
    tags: [registry]
    responses:
      200: {description: "{name, alias, production, versions: [...]}"}
      404: {description: No such registered model.}
    """
    await caller(request)
    name = request.path_params["name"]
    found = await service(request).registry_call("list", name)
    if not found:
        raise RegistryNotFound(f"no registered model {name!r}")
    return json_response(found[0])


@endpoint
async def register(request: Request) -> Response:
    """Register a version that points to a gateway route (admin).
    ---
    summary: Register a model version
    tags: [registry]
    responses:
      201: {description: "{name, version, target, params, run_id, aliases, created_at}"}
      403: {description: Not an admin.}
      409: {description: "The target is not a model this gateway can route to."}
    """
    p = await caller(request)
    require_admin(p)
    body = await body_of(request, Register)
    svc = service(request)
    svc.check_target(body.target)
    out = await svc.registry_call(
        "register",
        request.path_params["name"],
        target=body.target,
        params=body.params,
        run_id=body.run_id,
        alias=body.alias,
        description=body.description,
        stage=body.stage,
        actor=p.key_id,
    )
    return json_response(out, 201)


@endpoint
async def promote(request: Request) -> Response:
    """Make a version production: its gateway alias moves to the version's target (admin).
    ---
    summary: Promote a model version
    tags: [registry]
    responses:
      200: {description: "{name, version, previous_version, alias, target, params}"}
      403: {description: Not an admin.}
      404: {description: No such model, version or alias.}
    """
    p = await caller(request)
    require_admin(p)
    body = await body_of(request, Promote)
    svc = service(request)
    out = await svc.registry_call(
        "promote",
        request.path_params["name"],
        body.version,
        from_alias=body.from_,
        actor=p.key_id,
    )
    await svc.apply_bindings()
    return json_response(out)


@endpoint
async def rollback(request: Request) -> Response:
    """Move production back to the previous version (admin).
    ---
    summary: Roll back a registered model
    tags: [registry]
    responses:
      200: {description: "{name, version, previous_version, alias, target, params}"}
      403: {description: Not an admin.}
      409: {description: No earlier version to go back to.}
    """
    p = await caller(request)
    require_admin(p)
    svc = service(request)
    out = await svc.registry_call("rollback", request.path_params["name"], actor=p.key_id)
    await svc.apply_bindings()
    return json_response(out)


@endpoint
async def history(request: Request) -> Response:
    """Every register, promote and rollback of a model, hash-chained, oldest first.
    ---
    summary: A registered model's audit history
    tags: [registry]
    responses:
      200: {description: "{data: [{seq, time, actor, action, version, previous_version, hash}]}"}
    """
    await caller(request)
    found = await service(request).registry_call("history", request.path_params["name"])
    return json_response({"data": found})


routes = [
    Route("/v1/registry/models", list_models, methods=["GET"]),
    Route("/v1/registry/models/{name}", get_model, methods=["GET"]),
    Route("/v1/registry/models/{name}/versions", register, methods=["POST"]),
    Route("/v1/registry/models/{name}/promote", promote, methods=["POST"]),
    Route("/v1/registry/models/{name}/rollback", rollback, methods=["POST"]),
    Route("/v1/registry/models/{name}/history", history, methods=["GET"]),
]
