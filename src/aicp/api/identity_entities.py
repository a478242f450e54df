"""Users, teams, projects and service accounts in the admin API.

The four kinds share one set of handlers, made from a `Spec` each (no
per-kind branching in the handlers). Admins may do everything; a team admin
reads their own team's objects and manages the users of their team; a key
may read its own user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting import principals
from aicp.accounting.principals import not_found
from aicp.api import authz
from aicp.api import identity_models as m
from aicp.api.admin import json_response
from aicp.api.identity_http import body_of, endpoint, listing, path_id, query, state_of
from aicp.errors import PermissionDenied
from aicp.plane.exchange import Principal


@dataclass(frozen=True, slots=True)
class Spec:
    kind: str  # key of principals.KINDS
    path: str
    create: type[m.Body]
    update: type[m.Body]
    #: The team an object belongs to (a team belongs to itself).
    team_of: Callable[[dict[str, Any]], str | None]
    #: Whether a team admin may create, change and delete these in their team.
    team_admin_writes: bool = False
    #: Query filters the list accepts.
    filters: tuple[str, ...] = ("team_id",)


def _team_field(row: dict[str, Any]) -> str | None:
    value = row.get("team_id")
    return value if isinstance(value, str) else None


def _own_id(row: dict[str, Any]) -> str | None:
    value = row.get("id")
    return value if isinstance(value, str) else None


SPECS = (
    Spec("users", "/admin/users", m.UserCreate, m.UserUpdate, _team_field, True),
    Spec("teams", "/admin/teams", m.TeamCreate, m.TeamUpdate, _own_id, filters=()),
    Spec("projects", "/admin/projects", m.ProjectCreate, m.ProjectUpdate, _team_field),
    Spec(
        "service_accounts",
        "/admin/service-accounts",
        m.ServiceAccountCreate,
        m.ServiceAccountUpdate,
        _team_field,
        filters=("team_id", "project_id"),
    ),
)


def _may_write(spec: Spec, p: Principal, values: dict[str, Any]) -> None:
    """A team admin writes only users, only in their team, and never makes an admin."""
    if authz.is_admin(p):
        return
    if not spec.team_admin_writes:
        authz.require_admin(p)
    authz.require_team_admin(p, values.get("team_id", p.team_id))
    if values.get("role") == "admin":
        raise PermissionDenied("only an admin may make admins", code="admin_required")


async def _row_for(request: Request, spec: Spec, p: Principal, write: bool) -> dict[str, Any]:
    ident = path_id(request)
    if not authz.is_admin(p):
        if write and not spec.team_admin_writes:
            authz.require_admin(p)
        self_read = not write and spec.kind == "users" and p.user_id == ident
        if not self_read:
            authz.require_any_admin(p)
    row = await principals.get(state_of(request).db, spec.kind, ident)
    if row is None:
        raise not_found(principals.KINDS[spec.kind].name, ident)
    if not (spec.kind == "users" and not write and p.user_id == ident):
        authz.require_team_admin(p, spec.team_of(row))
    return row


def handlers(spec: Spec) -> list[Route]:
    name = principals.KINDS[spec.kind].name
    schema_create, schema_update = spec.create.__name__, spec.update.__name__

    async def create(request: Request) -> Response:
        state = state_of(request)
        p = await authz.caller(request)
        values = (await body_of(request, spec.create)).model_dump(exclude_none=True)
        if not authz.is_admin(p) and spec.team_admin_writes:
            values.setdefault("team_id", p.team_id)
        _may_write(spec, p, values)
        return json_response(await principals.create(state.db, spec.kind, values), 201)

    async def list_(request: Request) -> Response:
        state = state_of(request)
        p = await authz.caller(request)
        authz.require_any_admin(p)
        filters, limit, offset = query(request, *spec.filters)
        if not authz.is_admin(p):
            column = "id" if spec.kind == "teams" else "team_id"
            if filters.setdefault(column, p.team_id or "") != p.team_id:
                raise PermissionDenied("a team admin sees their own team's objects")
        return listing(await principals.find(state.db, spec.kind, filters, limit, offset))

    async def get(request: Request) -> Response:
        p = await authz.caller(request)
        return json_response(await _row_for(request, spec, p, write=False))

    async def patch(request: Request) -> Response:
        state = state_of(request)
        p = await authz.caller(request)
        row = await _row_for(request, spec, p, write=True)
        values = m.changes(await body_of(request, spec.update))
        if values:
            _may_write(spec, p, values)
        done = await principals.modify(state.db, spec.kind, row["id"], values)
        if done is None:
            raise not_found(name, row["id"])
        await state.keys.changed()
        return json_response(done)

    async def remove(request: Request) -> Response:
        state = state_of(request)
        p = await authz.caller(request)
        row = await _row_for(request, spec, p, write=True)
        if not await principals.remove(state.db, spec.kind, row["id"]):
            raise not_found(name, row["id"])
        await state.keys.changed()
        return json_response({"id": row["id"], "object": spec.kind, "deleted": True})

    create.__doc__ = _doc(f"Create a {name}", spec.kind, schema_create, 201)
    list_.__doc__ = _doc(f"List {spec.kind.replace('_', ' ')}", spec.kind, None, 200)
    get.__doc__ = _doc(f"Get a {name}", spec.kind, None, 200)
    patch.__doc__ = _doc(f"Update a {name}", spec.kind, schema_update, 200)
    remove.__doc__ = _doc(f"Delete a {name}", spec.kind, None, 200)
    one = spec.path + "/{id}"
    return [
        Route(spec.path, endpoint(create), methods=["POST"]),
        Route(spec.path, endpoint(list_), methods=["GET"]),
        Route(one, endpoint(get), methods=["GET"]),
        Route(one, endpoint(patch), methods=["PATCH"]),
        Route(one, endpoint(remove), methods=["DELETE"]),
    ]


def _doc(summary: str, tag: str, schema: str | None, status: int) -> str:
    body = ""
    if schema is not None:
        body = (
            "requestBody:\n  content:\n    application/json:\n"
            f"      schema: {{$ref: '#/components/schemas/{schema}'}}\n"
        )
    return (
        f"{summary}.\n---\nsummary: {summary}\ntags: [{tag}]\n{body}"
        f"responses:\n  {status}: {{description: OK}}\n"
        "  403: {description: Not allowed for this key.}\n"
        "  404: {description: No such object.}\n"
        "  422: {description: Invalid field.}\n"
    )


ENTITY_ROUTES = [route for spec in SPECS for route in handlers(spec)]
