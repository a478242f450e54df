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
from aicp.api.identity_http import body_of, endpoint, path_id, state_of
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
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [scope, scope_id]
            properties:
              scope: {type: string, enum: [key, user, team, project]}
              scope_id: {type: string}
              period: {type: string, enum: [daily, weekly, monthly, total]}
              hard_limit_usd: {type: number}
              soft_limit_usd: {type: number}
    responses:
      201: {description: The budget with its current window.}
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
    parameters:
      - {name: scope, in: query, schema: {type: string}}
      - {name: scope_id, in: query, schema: {type: string}}
    responses:
      200: {description: "{data: [budget]}"}
    """
    p = await caller(request)
    sv = state_of(request).budgets
    params = request.query_params
    scope = params.get("scope")
    if scope is not None and scope not in ("key", "user", "team", "project"):
        raise RequestError("scope: one of key, user, team, project", status=422, param="scope")
    scope_id = params.get("scope_id")
    if scope_id is not None and len(scope_id) > 64:
        raise RequestError("scope_id: at most 64 characters", status=422, param="scope_id")
    found = [b for b in await sv.list_budgets(scope, scope_id) if _may_read(p, b)]
    return json_response({"data": [await sv.status(b) for b in found]})


@endpoint
async def get_budget(request: Request) -> Response:
    """One budget with its current window: spent, reserved, remaining, reset time.
    ---
    summary: Get a budget
    responses:
      200: {description: The budget.}
      404: {description: No such budget.}
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
    summary: Delete a budget
    responses:
      200: {description: Deleted.}
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
    parameters:
      - {name: by, in: query, schema: {type: string, enum: [key, user, team, project, model, day]}}
      - {name: since, in: query, description: epoch seconds or ISO date/time (UTC)}
      - {name: until, in: query, description: epoch seconds or ISO date/time (UTC)}
    responses:
      200: {description: "{by, since, until, total_usd, data: [row]}"}
    """
    p = await caller(request)
    params = request.query_params
    by = params.get("by", "key")
    if by not in GROUPS:
        raise RequestError(f"by: one of {', '.join(GROUPS)}", status=422, param="by")
    since, until = _time(params.get("since"), "since"), _time(params.get("until"), "until")
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


def _time(value: str | None, name: str) -> float | None:
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
    return RequestError("no such budget", status=404, code="not_found")


routes: list[Route] = [
    Route("/admin/budgets", create_budget, methods=["POST"]),
    Route("/admin/budgets", list_budgets, methods=["GET"]),
    Route("/admin/budgets/{id}", get_budget, methods=["GET"]),
    Route("/admin/budgets/{id}", delete_budget, methods=["DELETE"]),
    Route("/admin/spend", spend_report, methods=["GET"]),
]
