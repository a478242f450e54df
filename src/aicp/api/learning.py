"""Feedback on answers (`POST /v1/feedback`) and route memory (`GET /admin/routes/memory`).

A key scores the answers of its own receipts (an admin any); the score goes into
route memory for the receipt's task class and the deployment that answered, where
the learned strategy reads it as quality (docs/routing.md).
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
from pydantic import Field
from sqlalchemy import insert
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.api.admin import json_response
from aicp.api.authz import caller, is_admin, require_admin
from aicp.api.identity_http import body_of, endpoint, state_of
from aicp.api.identity_models import Body
from aicp.errors import RequestError
from aicp.storage.schema import feedback as feedback_table


class Feedback(Body):
    receipt_id: Annotated[str, Field(min_length=1, max_length=64)]
    #: 0 (bad) to 1 (good).
    score: Annotated[float, Field(ge=0, le=1)]
    comment: Annotated[str, Field(max_length=2000)] | None = None


@endpoint
async def give_feedback(request: Request) -> Response:
    """Score the answer of a receipt, from 0 (bad) to 1 (good).
    ---
    summary: Feedback on an answer
    tags: [learning]
    responses:
      201: {description: "{receipt_id, score, task_class, route}"}
      404: {description: "No such receipt, or one of another key."}
      409: {description: "The receipt's request was not answered by a deployment."}
      422: {description: A score outside 0..1.}
    """
    p = await caller(request)
    body = await body_of(request, Feedback)
    state = state_of(request)
    row = await state.receipts.get(body.receipt_id)
    if row is None or (not is_admin(p) and row.key_id != p.key_id):
        raise RequestError(f"no receipt {body.receipt_id!r}", status=404, code="not_found")
    receipt = orjson.loads(row.data)
    route = (receipt.get("route") or {}).get("served")
    task = (receipt.get("classification") or {}).get("task_class") or "general"
    if not route:
        raise RequestError(
            "that request was not answered by a deployment (a cache hit or an error)",
            status=409,
            code="nothing_to_score",
        )
    async with state.db.begin() as conn:
        await conn.execute(
            insert(feedback_table).values(
                receipt_id=body.receipt_id,
                score=body.score,
                comment=body.comment,
                key_id=p.key_id,
                task_class=task,
                route=route,
                created_at=time.time(),
            )
        )
    if state.routes is not None:
        state.routes.feedback(task, route, body.score)
    data = {"receipt_id": body.receipt_id, "score": body.score, "task_class": task, "route": route}
    if state.events.wants("feedback.received"):
        state.events.emit("feedback.received", data, key_id=p.key_id, team_id=p.team_id)
    return json_response(data, 201)


@endpoint
async def routes_memory(request: Request) -> Response:
    """Decayed outcome statistics per (task class, route).
    ---
    summary: Route memory (admin)
    tags: [learning]
    parameters:
      - {name: task_class, in: query, schema: {type: string}}
    responses:
      200: {description: "{data: [{task_class, route, n, success_rate, latency_ms, ...}]}"}
      403: {description: Not an admin.}
    """
    require_admin(await caller(request))
    state = state_of(request)
    assert state.routes is not None
    task = request.query_params.get("task_class") or None
    return json_response({"data": state.routes.snapshot(task)})


routes = [
    Route("/v1/feedback", give_feedback, methods=["POST"]),
    Route("/admin/routes/memory", routes_memory, methods=["GET"]),
]
