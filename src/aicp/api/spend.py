"""The money admin API: /admin/budgets and /admin/spend.

Admins see and change every budget. A team admin reads the budgets and spend
of their team; any other key reads only its own. Nobody but an admin can set
a budget, so a key can never raise its own limits.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting.budgets import Budget
from aicp.accounting.spend import GROUPS
from aicp.api.admin import json_response
from aicp.api.authz import caller, is_admin, require_admin
from aicp.api.identity_http import body_of, endpoint, id_param, path_id, state_of
from aicp.api.identity_models import Body, Ident
from aicp.errors import PermissionDenied, RequestError
from aicp.plane.exchange import Principal

Usd = Annotated[float, Field(ge=0, le=1e12)]


class BudgetCreate(Body):
    scope: Literal["key", "user", "team", "project"]
    scope_id: Ident
    period: Literal["daily", "weekly", "monthly", "total"] = "monthly"
    hard_limit_usd: Usd | None = None
    soft_limit_usd: Usd | None = None


def _may_read(p: Principal, b: Budget) -> bool:
    if is_admin(p):
        return True
    team_admin = p.role == "team_admin" and p.team_id is not None
    if team_admin and b.scope == "team" and b.scope_id == p.team_id:
        return True
    own = {"key": p.key_id, "user": p.user_id, "team": p.team_id, "project": p.project_id}
    return own.get(b.scope) == b.scope_id


@endpoint
async def create_budget(request: Request) -> Response:
    """Create a budget, or change the limits of the one with that scope, id and period.
    ---
    summary: Set a budget (admin)
    description: >-
      Only an admin sets budgets, so no key can raise its own limits. Setting the
      budget of an existing (scope, scope_id, period) changes its limits.
    tags: [budgets]
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/BudgetCreate'}
    responses:
      201: {description: "The budget and its window: spent_usd, remaining_usd, resets_at."}
      401: {description: No valid API key.}
      403: {description: Not an admin.}
      422: {description: "Unknown scope or period, malformed scope_id, or a negative limit."}
    """
    require_admin(await caller(request))
    body = await body_of(request, BudgetCreate)
    sv = state_of(request).budgets
    budget = await sv.set_budget(
        body.scope, body.scope_id, body.period, body.hard_limit_usd, body.soft_limit_usd
    )
    return json_response(await sv.status(budget), 201)


@endpoint
async def list_budgets(request: Request) -> Response:
    """Budgets the caller may see, each with its current window's spend.
    ---
    summary: List budgets
    description: >-
      An admin sees every budget; a team admin also sees their team's budget; any
      other key sees the budgets of its own key, user, team and project.
    tags: [budgets]
    parameters:
      - {name: scope, in: query, schema: {type: string, enum: [key, user, team, project]}}
      - name: scope_id
        in: query
        schema: {type: string, pattern: '^[A-Za-z0-9_.-]{1,64}$'}
    responses:
      200: {description: "{data: [budget]}, each budget with its current window."}
      401: {description: No valid API key.}
      422: {description: An unknown scope or a malformed scope_id.}
    """
    p = await caller(request)
    sv = state_of(request).budgets
    params = request.query_params
    scope = params.get("scope")
    if scope is not None and scope not in ("key", "user", "team", "project"):
        raise RequestError("scope: one of key, user, team, project", status=422, param="scope")
    scope_id = id_param(request, "scope_id")
    found = [b for b in await sv.list_budgets(scope, scope_id) if _may_read(p, b)]
    return json_response({"data": [await sv.status(b) for b in found]})


@endpoint
async def get_budget(request: Request) -> Response:
    """One budget with its current window: spent, reserved, remaining, reset time.
    ---
    summary: Get a budget
    tags: [budgets]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The budget with its current window.}
      401: {description: No valid API key.}
      404: {description: "No such budget, or one the caller may not see (not told apart)."}
    """
    p = await caller(request)
    sv = state_of(request).budgets
    budget = await sv.get_budget(path_id(request))
    if budget is None or not _may_read(p, budget):
        raise _not_found()
    return json_response(await sv.status(budget))


@endpoint
async def delete_budget(request: Request) -> Response:
    """Delete a budget (admin).
    ---
    summary: Delete a budget (admin)
    tags: [budgets]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "{id, deleted: true}"}
      401: {description: No valid API key.}
      403: {description: Not an admin.}
      404: {description: No such budget.}
    """
    require_admin(await caller(request))
    budget_id = path_id(request)
    if not await state_of(request).budgets.delete_budget(budget_id):
        raise _not_found()
    return json_response({"id": budget_id, "deleted": True})


@endpoint
async def spend_report(request: Request) -> Response:
    """Spend from the ledger, grouped by key, user, team, project, model or UTC day.
    ---
    summary: Spend report
    description: >-
      An admin sees all spend; a team admin the spend of their team; any other key
      only its own.
    tags: [spend]
    parameters:
      - name: by
        in: query
        schema: {type: string, enum: [key, user, team, project, model, day], default: key}
      - name: since
        in: query
        description: Start (inclusive), epoch seconds or ISO date/time (UTC when no zone).
        schema: {type: string}
      - name: until
        in: query
        description: End (exclusive), epoch seconds or ISO date/time (UTC when no zone).
        schema: {type: string}
    responses:
      200:
        description: >-
          {by, since, until, total_usd, total_micros, data: [{<by>, requests,
          prompt_tokens, completion_tokens, cached_tokens, cost_micros, ...}]}
      401: {description: No valid API key.}
      403: {description: A caller with no key of its own to narrow the report to.}
      422: {description: "An unknown `by`, or a `since`/`until` that is not a time."}
    """
    p = await caller(request)
    params = request.query_params
    by = params.get("by", "key")
    if by not in GROUPS:
        raise RequestError(f"by: one of {', '.join(GROUPS)}", status=422, param="by")
    since, until = (
        parse_time(params.get("since"), "since"),
        parse_time(params.get("until"), "until"),
    )
    key_id = team_id = None
    if not is_admin(p):
        if p.role == "team_admin" and p.team_id is not None:
            team_id = p.team_id
        elif p.key_id is not None:
            key_id = p.key_id
        else:
            raise PermissionDenied("this key may not read spend", code="spend_access_denied")
    ledger = state_of(request).budgets.ledger
    rows = await ledger.report(by, since, until, key_id=key_id, team_id=team_id)
    total = sum(r["cost_micros"] for r in rows)
    return json_response(
        {
            "by": by,
            "since": since,
            "until": until,
            "total_usd": total / 1_000_000,
            "total_micros": total,
            "data": rows,
        }
    )


def parse_time(value: str | None, name: str) -> float | None:
    """Epoch seconds or an ISO time (UTC when it names no zone) from a query parameter."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise RequestError(f"{name}: not a finite number", status=422, param=name)
    try:
        t = datetime.fromisoformat(value[:40])
    except ValueError:
        raise RequestError(
            f"{name}: epoch seconds or an ISO date such as 2025-03-01", status=422, param=name
        ) from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _not_found() -> RequestError:
    err = RequestError("no such budget", status=404, code="not_found")
    err.kind = "not_found_error"  # as for every other missing object of the admin API
    return err


routes: list[Route] = [
    Route("/admin/budgets", create_budget, methods=["POST"]),
    Route("/admin/budgets", list_budgets, methods=["GET"]),
    Route("/admin/budgets/{id}", get_budget, methods=["GET"]),
    Route("/admin/budgets/{id}", delete_budget, methods=["DELETE"]),
    Route("/admin/spend", spend_report, methods=["GET"]),
]
