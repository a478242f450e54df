"""POST /admin/replay: a stored request through today's path, next to what it got then.

`simulate` (the default) runs every stage but execute: the route, limits and
budget the request would meet today, nothing sent upstream, nothing held
afterwards. `live` sends it again through the real endpoint handler and gets
a receipt of its own. Either needs the request body as it was sent, so a
receipt whose bodies were not kept, were kept redacted or are past retention
is refused with 409 `body_not_retained`. Admins only; see docs/replay.md.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import StringConstraints
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting.principals import not_found
from aicp.api.admin import json_response
from aicp.api.authz import caller, require_admin
from aicp.api.identity_http import body_of, endpoint, state_of
from aicp.api.identity_models import Body
from aicp.api.receipts import RECEIPT_ID
from aicp.api.replay_run import run_live, run_simulate, summary
from aicp.errors import RequestError
from aicp.receipts.log import ReceiptNotFound

#: The fields compared; a simulation measures neither latency nor output.
COMPARED = ("route", "served", "status", "cost_usd", "latency_ms", "output")
NOT_SIMULATED = frozenset({"latency_ms", "output"})

#: The caller's credentials, passed on so that the replay runs as them.
CREDENTIALS = ("authorization", "x-api-key", "api-key")


class ReplayRequest(Body):
    receipt_id: Annotated[str, StringConstraints(max_length=64)]
    #: A route to force, as `x-aicp-route` would (provider/model, a model or an alias).
    route: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    mode: Literal["simulate", "live"] = "simulate"


#: The original request's hints a replay sends again (its mode is the replay's own).
REPLAYED_HINTS = frozenset(
    {
        "x-aicp-task-class",
        "x-aicp-sensitivity",
        "x-aicp-trust",
        "x-aicp-latency-sla-ms",
        "x-aicp-memory",
        "x-aicp-policy-bypass",
        "x-aicp-override",
    }
)


def not_retained(message: str) -> RequestError:
    return RequestError(message, status=409, code="body_not_retained")


@endpoint
async def replay(request: Request) -> Response:
    """Re-run a stored request through today's path and compare (admin).
    ---
    summary: Replay a request (admin)
    tags: [receipts]
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [receipt_id]
            properties:
              receipt_id: {type: string}
              route: {type: string, description: a route to force (provider/model)}
              mode: {type: string, enum: [simulate, live], default: simulate}
    responses:
      200:
        description: >-
          {receipt_id, mode, original, replay, differences}: original and replay each
          {receipt_id, route, served, status, cost_usd, latency_ms, output, ...};
          differences [{field, original, replay}].
      403: {description: Not an admin key.}
      404: {description: No such receipt.}
      409: {description: "body_not_retained: the request body was not kept in full."}
    """
    require_admin(await caller(request))
    ask = await body_of(request, ReplayRequest)
    state = state_of(request)
    if not RECEIPT_ID.fullmatch(ask.receipt_id):
        raise not_found("receipt", ask.receipt_id[:64])
    try:
        row = await state.receipts.get(ask.receipt_id)
    except ReceiptNotFound:
        raise not_found("receipt", ask.receipt_id[:64]) from None
    original: dict[str, Any] = orjson.loads(row.data)
    raw, response = await _stored(request, row)
    headers = {k: v for k in CREDENTIALS if (v := request.headers.get(k)) is not None}
    # Asked as the original was (its hints), but never answered from the cache: a
    # replay is about what the path would do today.
    hints = original.get("hints") or {}
    headers.update({k: str(v) for k, v in hints.items() if k in REPLAYED_HINTS})
    headers["x-aicp-cache"] = "off"
    forced = ask.route or _forced(original)
    if forced:
        headers["x-aicp-route"] = forced
    run = run_live if ask.mode == "live" else run_simulate
    again = await run(state, original, raw, headers)
    before = summary(original, response)
    skip = NOT_SIMULATED if ask.mode == "simulate" else frozenset()
    return json_response(
        {
            "receipt_id": row.id,
            "mode": ask.mode,
            "original": before,
            "replay": again,
            "differences": [
                {"field": f, "original": before[f], "replay": again[f]}
                for f in COMPARED
                if f not in skip and before[f] != again[f]
            ],
        }
    )


def _forced(original: dict[str, Any]) -> str | None:
    """A request that forced its route forces it again, unless the replay names another."""
    route = original.get("route") or {}
    requested = route.get("requested")
    return requested if route.get("forced") and isinstance(requested, str) else None


async def _stored(request: Request, row: Any) -> tuple[bytes, bytes | None]:
    """(request body, response body) as stored; 409 when the request cannot be replayed."""
    state = state_of(request)
    rs = state.settings.receipts
    days = rs.body_retention_days
    rid = row.id
    if days > 0 and row.created_at < time.time() - days * 86400:
        raise not_retained(
            f"the bodies of {rid} are past retention (receipts.body_retention_days: {days:g}); "
            "the receipt stays verifiable, but its request cannot be replayed"
        )
    bodies = await state.receipts.bodies(rid)
    if bodies is None or bodies.request is None:
        why = (
            "receipts.bodies is 'none'"
            if rs.bodies == "none"
            else "the bodies were not kept when it was recorded, or were deleted by retention"
        )
        raise not_retained(f"the request body of {rid} was not retained ({why}); cannot replay")
    if bodies.kept != "full":
        raise not_retained(
            f"the request body of {rid} was kept redacted (receipts.bodies: {bodies.kept}): its "
            "text is replaced by lengths, so it cannot be replayed; keep bodies 'full' to replay"
        )
    response = None if bodies.response is None else bytes(bodies.response)
    return bytes(bodies.request), response


routes: list[Route] = [Route("/admin/replay", replay, methods=["POST"])]
