"""Project and global memory over HTTP: /v1/memory (docs/memory.md).

A key reads and writes its own project's memory (its key's project, or the
`project_id` it names when it is an admin) and reads global memory; only an
admin writes global memory or another project's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.api.admin import json_response
from aicp.api.authz import caller, is_admin
from aicp.api.identity_http import body_of, endpoint, id_param, path_id, state_of
from aicp.api.identity_models import Body, Ident
from aicp.errors import PermissionDenied, RequestError
from aicp.memory.projects import KINDS, MemoryEntry, MemoryStore
from aicp.observability.events import EventBus
from aicp.plane.exchange import Principal


class MemoryCreate(Body):
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    kind: str = "note"
    project_id: Ident | None = None
    #: `true` with no project: global memory (admins only).
    is_global: bool = Field(default=False, alias="global")
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    retired: bool = False


def _store(request: Request) -> MemoryStore:
    store = state_of(request).memory
    assert store is not None
    return store


def _project_for_write(p: Principal, body: MemoryCreate) -> str | None:
    if body.is_global:
        if not is_admin(p):
            raise PermissionDenied("only an admin writes global memory")
        return None
    project = body.project_id or p.project_id
    if project is None:
        raise RequestError(
            "name a project_id (or global: true, admins only)", status=422, param="project_id"
        )
    if project != p.project_id and not is_admin(p):
        raise PermissionDenied("a key writes only its own project's memory")
    return project


def _readable(p: Principal) -> set[str | None] | None:
    """Projects a caller may read (None: all)."""
    return None if is_admin(p) else {p.project_id, None}


async def _visible(request: Request, p: Principal) -> tuple[MemoryStore, MemoryEntry]:
    """The store and the entry of the path's id, when the caller may see it; else 404."""
    store = _store(request)
    ident = path_id(request)
    current = await store.get(ident)
    readable = _readable(p)
    if current is None or (readable is not None and current.project_id not in readable):
        raise RequestError(f"no memory entry {ident!r}", status=404, code="not_found")
    return store, current


async def _write(
    request: Request,
    store: MemoryStore,
    p: Principal,
    body: MemoryCreate,
    project: str | None,
    entry_id: str | None = None,
) -> Response:
    """Store `body` (a new entry, or the next version of `entry_id`), announce it: 201."""
    entry = await store.add(
        text=body.text,
        title=body.title,
        kind=body.kind,
        project_id=project,
        tags=body.tags,
        author=p.name or p.key_id,
        entry_id=entry_id,
        retired=body.retired and entry_id is not None,  # retiring is for versions
    )
    view = entry.view()
    events: EventBus = state_of(request).events
    if events.wants("memory.added"):
        events.emit("memory.added", {k: view[k] for k in ("id", "version", "project_id", "kind")})
    return json_response(view, 201)


@endpoint
async def add(request: Request) -> Response:
    """Store a memory entry.
    ---
    summary: Add a memory entry
    tags: [memory]
    responses:
      201: {description: "The entry: id, version 1, project_id, kind, title, text, tags, author."}
      403: {description: "Global memory or another project's, without an admin key."}
      422: {description: "A bad field, an unknown kind, or a secret in the text."}
    """
    p = await caller(request)
    body = await body_of(request, MemoryCreate)
    return await _write(request, _store(request), p, body, _project_for_write(p, body))


@endpoint
async def add_version(request: Request) -> Response:
    """Store the next version of an entry (the old ones stay in its history).
    ---
    summary: Change a memory entry
    tags: [memory]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      201: {description: "The new version."}
      404: {description: "No such entry, or one the caller may not see."}
    """
    p = await caller(request)
    store, current = await _visible(request, p)
    body = await body_of(request, MemoryCreate)
    if current.project_id is None and not is_admin(p):
        raise PermissionDenied("only an admin writes global memory")
    return await _write(request, store, p, body, current.project_id, entry_id=current.id)


@endpoint
async def search(request: Request) -> Response:
    """Search memory: `q` (words), `project_id`; the latest version of each entry.
    ---
    summary: Search memory
    tags: [memory]
    parameters:
      - {name: q, in: query, schema: {type: string}}
      - {name: project_id, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, maximum: 100}}
    responses:
      200: {description: "{data: [entry with score]}"}
    """
    p = await caller(request)
    params = request.query_params
    project = id_param(request, "project_id") or p.project_id
    readable = _readable(p)
    if readable is not None and project not in readable:
        raise PermissionDenied("a key reads only its own project's memory")
    try:
        limit = min(100, max(1, int(params.get("limit", "20"))))
    except ValueError:
        raise RequestError("limit: an integer", status=422, param="limit") from None
    found = await _store(request).search(params.get("q", ""), projects={project, None}, limit=limit)
    return json_response({"data": [{**e.view(), "score": round(s, 4)} for e, s in found]})


@endpoint
async def show(request: Request) -> Response:
    """One entry's latest version; `/history` lists every version.
    ---
    summary: Show a memory entry
    tags: [memory]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "The entry (or {data: [versions]} for /history)."}
      404: {description: "No such entry, or one the caller may not see."}
    """
    p = await caller(request)
    store, current = await _visible(request, p)
    if request.url.path.endswith("/history"):
        return json_response({"data": [e.view() for e in await store.history(current.id)]})
    return json_response(current.view())


routes = [
    Route("/v1/memory", add, methods=["POST"]),
    Route("/v1/memory", search, methods=["GET"]),
    Route("/v1/memory/{id}", show, methods=["GET"]),
    Route("/v1/memory/{id}", add_version, methods=["POST"]),
    Route("/v1/memory/{id}/history", show, methods=["GET"]),
]

__all__ = ["KINDS", "routes"]
