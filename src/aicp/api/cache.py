"""The cache admin API: statistics and invalidation (admins only).

`DELETE /admin/cache/entries/{id}` removes one entry; `DELETE /admin/cache`
with `model`, `user_id` and/or `key_id` removes every entry that matches them
all (at least one is required: emptying the whole cache takes `all=true`).
Every gateway process drops what was removed at its next sync (`cache.sync_s`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.api.admin import json_response
from aicp.api.authz import caller, require_admin
from aicp.api.identity_http import endpoint, id_param, path_id, state_of
from aicp.errors import RequestError
from aicp.memory.cache import CacheStore


def _store(request: Request) -> CacheStore:
    store = state_of(request).cache
    if store is None:
        raise RequestError(
            "no cache is switched on (cache.exact or cache.semantic in aicp.yaml)",
            status=404,
            code="cache_off",
        )
    return store


@endpoint
async def stats(request: Request) -> Response:
    """Hits, misses, hit rate, tokens and cost saved, in total and per model.
    ---
    summary: Cache statistics (admin)
    tags: [cache]
    responses:
      200: {description: "{hits, misses, hit_rate, tokens_saved, cost_saved_usd, entries, models}"}
      401: {description: No valid API key.}
      403: {description: Not an admin.}
      404: {description: No cache is switched on.}
    """
    require_admin(await caller(request))
    return json_response(await _store(request).stats())


@endpoint
async def delete_entry(request: Request) -> Response:
    """Remove one cached answer.
    ---
    summary: Invalidate a cache entry (admin)
    tags: [cache]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "{id, deleted: true}"}
      401: {description: No valid API key.}
      403: {description: Not an admin.}
      404: {description: No such entry.}
    """
    require_admin(await caller(request))
    ident = path_id(request)
    if await _store(request).invalidate(entry_id=ident) == 0:
        raise RequestError(f"no cache entry {ident!r}", status=404, code="not_found")
    return json_response({"id": ident, "deleted": True})


@endpoint
async def delete_entries(request: Request) -> Response:
    """Remove every cached answer of a model, a user and/or a key.
    ---
    summary: Invalidate cache entries (admin)
    tags: [cache]
    parameters:
      - {name: model, in: query, schema: {type: string}}
      - {name: user_id, in: query, schema: {type: string}}
      - {name: key_id, in: query, schema: {type: string}}
      - {name: all, in: query, schema: {type: boolean}}
    responses:
      200: {description: "{deleted: N}"}
      401: {description: No valid API key.}
      403: {description: Not an admin.}
      422: {description: No filter and no all=true.}
    """
    require_admin(await caller(request))
    store = _store(request)
    model = request.query_params.get("model")
    if model is not None and not (0 < len(model) <= 200):
        raise RequestError("model: 1 to 200 characters", status=422, param="model")
    user_id, key_id = id_param(request, "user_id"), id_param(request, "key_id")
    everything = request.query_params.get("all") in ("true", "1")
    if model is None and user_id is None and key_id is None and not everything:
        raise RequestError(
            "name what to remove: model, user_id or key_id (or all=true)", status=422
        )
    n = await store.invalidate(model=model, user_id=user_id, key_id=key_id)
    return json_response({"deleted": n})


routes = [
    Route("/admin/cache/stats", stats, methods=["GET"]),
    Route("/admin/cache/entries/{id}", delete_entry, methods=["DELETE"]),
    Route("/admin/cache", delete_entries, methods=["DELETE"]),
]
