"""The key endpoints of the admin API: /admin/keys and rotate, revoke.

Who may do what is decided in api/authz.py; each handler's docstring (after
`---`) is its OpenAPI entry. Each change is announced as a `key.*` event
naming the key and the caller's key id, never the key or its hash.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting import keystore, principals
from aicp.accounting.principals import not_found
from aicp.api import authz
from aicp.api import identity_models as m
from aicp.api.admin import json_response
from aicp.api.identity_http import body_of, endpoint, listing, path_id, query, state_of
from aicp.errors import PermissionDenied
from aicp.plane.exchange import Principal
from aicp.storage.schema import MICROS, budgets

if TYPE_CHECKING:
    from aicp.state import AppState


# --- keys ------------------------------------------------------------------------------------


def _times(values: dict[str, Any]) -> None:
    expires_in = values.pop("expires_in", None)
    if expires_in is not None:
        values["expires_at"] = time.time() + expires_in
    when = values.get("expires_at")
    if isinstance(when, datetime):
        values["expires_at"] = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


async def _team_admin_may(state: AppState, p: Principal, values: dict[str, Any]) -> None:
    """A team admin's key settings stay inside their team and never grant admin."""
    if authz.is_admin(p):
        return
    authz.require_any_admin(p)
    if values.get("is_admin"):
        raise PermissionDenied("only an admin may make admin keys", code="admin_required")
    if "team_id" in values and values["team_id"] != p.team_id:
        raise PermissionDenied("a team admin's keys stay in their team", code="team_admin_required")
    for field, kind in (
        ("user_id", "users"),
        ("service_account_id", "service_accounts"),
        ("project_id", "projects"),
    ):
        ident = values.get(field)
        row = None if ident is None else await principals.get(state.db, kind, ident)
        if row is not None and row["team_id"] != p.team_id:
            raise PermissionDenied(f"{field}: not in your team", code="team_admin_required")


def _announce(
    state: AppState, type: str, actor: Principal, row: dict[str, Any], **more: Any
) -> None:
    events = state.events
    if not events.wants(type):
        return
    data = {
        "key_id": row["id"],
        "key_prefix": row.get("display"),
        "name": row.get("name"),
        "team_id": row.get("team_id"),
        "user_id": row.get("user_id"),
        "actor_key_id": actor.key_id,
        **more,
    }
    events.emit(type, data, key_id=row["id"], team_id=row.get("team_id"))


async def set_key_budget(state: AppState, key_id: str, period: str, usd: float) -> None:
    """A hard USD budget for a key, through the budget service."""
    await state.budgets.set_budget(scope="key", scope_id=key_id, period=period, hard_limit_usd=usd)


async def _copy_budgets(state: AppState, old_id: str, new_id: str) -> None:
    """The new key of a rotation gets the old key's budget definitions (not its spend)."""
    where = (budgets.c.scope == "key") & (budgets.c.scope_id == old_id)
    async with state.db.connect() as conn:
        rows = list(await conn.execute(budgets.select().where(where)))
    for b in rows:
        hard, soft = b.hard_limit_micros, b.soft_limit_micros
        await state.budgets.set_budget(
            scope="key",
            scope_id=new_id,
            period=b.period,
            hard_limit_usd=None if hard is None else hard / MICROS,
            soft_limit_usd=None if soft is None else soft / MICROS,
        )


@endpoint
async def create_key(request: Request) -> Response:
    """Create a virtual key; the key is in `key` and is shown only this once.
    ---
    summary: Create a virtual key
    tags: [keys]
    requestBody:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/KeyCreate'}
    responses:
      201: {description: "The key's record, with `key` (shown once) and `id`."}
      403: {description: Not an admin, or a team admin outside their team.}
      422: {description: A field is invalid or names something that does not exist.}
    """
    state = state_of(request)
    p = await authz.caller(request)
    body = await body_of(request, m.KeyCreate)
    values = body.model_dump(exclude_none=True)
    if not authz.is_admin(p):
        values.setdefault("team_id", p.team_id)
    await _team_admin_may(state, p, values)
    _times(values)
    usd = values.pop("budget_usd", None)
    period = values.pop("budget_period", None) or "monthly"
    if "name" not in values:
        values["name"] = "key"
    row, key = await keystore.create_key(state.db, state.keys.pepper, values)
    if usd is not None:
        await set_key_budget(state, row["id"], period, usd)
    await state.keys.changed()
    _announce(state, "key.created", p, row)
    return json_response({**row, "key": key}, 201)


@endpoint
async def list_keys(request: Request) -> Response:
    """List keys (never the keys themselves); a team admin sees their team's.
    ---
    summary: List virtual keys
    tags: [keys]
    parameters:
      - {name: team_id, in: query, schema: {type: string}}
      - {name: user_id, in: query, schema: {type: string}}
      - {name: project_id, in: query, schema: {type: string}}
      - {name: service_account_id, in: query, schema: {type: string}}
      - {name: include_revoked, in: query, schema: {type: boolean}}
      - {name: limit, in: query, schema: {type: integer}}
      - {name: offset, in: query, schema: {type: integer}}
    responses:
      200: {description: "{object: list, data: [key records]}"}
    """
    state = state_of(request)
    p = await authz.caller(request)
    authz.require_any_admin(p)
    filters, limit, offset = query(
        request, "team_id", "user_id", "project_id", "service_account_id"
    )
    # A team admin lists their own team, whatever the query says otherwise.
    if not authz.is_admin(p) and filters.setdefault("team_id", p.team_id or "") != p.team_id:
        raise PermissionDenied("a team admin sees their own team's keys")
    revoked = request.query_params.get("include_revoked", "false").lower() in ("1", "true")
    return listing(await keystore.find_keys(state.db, filters, revoked, limit, offset))


async def _key_for(request: Request, p: Principal, own_ok: bool) -> dict[str, Any]:
    """The key of the path, if `p` may act on it (its own key only when `own_ok`)."""
    ident = path_id(request)
    if not authz.is_admin(p) and p.role != "team_admin" and not (own_ok and p.key_id == ident):
        raise PermissionDenied("this key may not act on that key", code="key_access_denied")
    row = await keystore.get_key(state_of(request).db, ident)
    if row is None:
        raise not_found("key", ident)
    if own_ok and p.key_id == ident:
        return row
    authz.require_team_admin(p, row["team_id"])
    return row


@endpoint
async def get_key(request: Request) -> Response:
    """One key's record; a key may read its own.
    ---
    summary: Get a virtual key
    tags: [keys]
    responses:
      200: {description: The key's record (without the key).}
      404: {description: No such key.}
    """
    p = await authz.caller(request)
    return json_response(await _key_for(request, p, own_ok=True))


@endpoint
async def update_key(request: Request) -> Response:
    """Change a key's settings; nobody but an admin changes the key they call with.
    ---
    summary: Update a virtual key
    tags: [keys]
    requestBody:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/KeyUpdate'}
    responses:
      200: {description: The updated record.}
    """
    state = state_of(request)
    p = await authz.caller(request)
    row = await _key_for(request, p, own_ok=False)
    if p.key_id == row["id"] and not authz.is_admin(p):
        raise PermissionDenied("a key cannot change its own settings", code="key_access_denied")
    values = m.changes(await body_of(request, m.KeyUpdate))
    await _team_admin_may(state, p, values)
    _times(values)
    usd = values.pop("budget_usd", None)
    period = values.pop("budget_period", None) or "monthly"
    updated = await keystore.update_key(state.db, row["id"], values)
    if updated is None:
        raise not_found("key", row["id"])
    if usd is not None:
        await set_key_budget(state, row["id"], period, usd)
    await state.keys.changed()
    changed = sorted([*values, *(["budget_usd"] if usd is not None else [])])
    _announce(state, "key.updated", p, updated, changed=changed)
    return json_response(updated)


@endpoint
async def rotate_key(request: Request) -> Response:
    """A new key with the same settings; the old one stays valid for `grace_seconds`.
    ---
    summary: Rotate a virtual key
    tags: [keys]
    requestBody:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/KeyRotate'}
    responses:
      201: {description: "The new key's record with `key` (shown once) and `rotated_from`."}
    """
    state = state_of(request)
    p = await authz.caller(request)
    row = await _key_for(request, p, own_ok=False)
    body = await body_of(request, m.KeyRotate)
    done = await keystore.rotate_key(state.db, state.keys.pepper, row["id"], body.grace_seconds)
    if done is None:
        raise not_found("key", row["id"])
    new, key = done
    await _copy_budgets(state, row["id"], new["id"])
    await state.keys.changed()
    _announce(state, "key.rotated", p, row, new_key_id=new["id"], grace_s=body.grace_seconds)
    return json_response({**new, "key": key}, 201)


@endpoint
async def revoke_key(request: Request) -> Response:
    """Revoke a key at once (every gateway process refuses it within a second).
    ---
    summary: Revoke a virtual key
    tags: [keys]
    responses:
      200: {description: The revoked key's record.}
    """
    state = state_of(request)
    p = await authz.caller(request)
    row = await _key_for(request, p, own_ok=True)
    revoked = await keystore.revoke_key(state.db, row["id"])
    if revoked is None:
        raise not_found("key", row["id"])
    await state.keys.changed()
    if row["revoked_at"] is None:  # revoking a revoked key changes nothing
        _announce(state, "key.revoked", p, revoked)
    return json_response(revoked)


KEY_ROUTES = [
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys/{id}", get_key, methods=["GET"]),
    Route("/admin/keys/{id}", update_key, methods=["PATCH"]),
    Route("/admin/keys/{id}/rotate", rotate_key, methods=["POST"]),
    Route("/admin/keys/{id}/revoke", revoke_key, methods=["POST"]),
]
