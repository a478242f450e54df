"""The two ways /admin/replay re-runs a stored request: simulate and live.

Both run the request as the admin who asked (their key's limits, budgets and
right to force routes apply, not the original key's: a replay must not spend
someone else's money) and mark its receipt with the original's id in
`labels.replay_of`. That mark travels in process only (an Exchange label, or
the ASGI scope key below), never in a header, so no client can claim it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from aicp.accounting.budget_stages import max_output, prompt_estimate
from aicp.api.asgi import request_id
from aicp.api.inprocess import Caller, committed_receipt, endpoint_for, invoke
from aicp.errors import AicpError
from aicp.plane.exchange import Exchange
from aicp.plane.simulate import simulate
from aicp.protocol.validate import parse_json
from aicp.providers.base import Usage
from aicp.receipts.output import output_text
from aicp.storage.schema import MICROS

if TYPE_CHECKING:
    from aicp.state import AppState


def summary(receipt: dict[str, Any], response: bytes | None) -> dict[str, Any]:
    """What a receipt says the request came to, next to the text of its response."""
    route = receipt.get("route") or {}
    latency = receipt.get("latency_us") or {}
    total = latency.get("total")
    return {
        "receipt_id": receipt.get("id"),
        "mode": receipt.get("mode"),
        "route": route.get("chain"),
        "forced": bool(route.get("forced")),
        "served": route.get("served"),
        "status": receipt.get("status"),
        "error": receipt.get("error"),
        "cost_usd": (receipt.get("cost_micros") or 0) / MICROS,
        "latency_ms": None if total is None else total / 1000,
        "output": output_text(response),
    }


def usage_of(receipt: dict[str, Any]) -> Usage:
    u = receipt.get("usage") or {}
    return Usage(
        prompt_tokens=u.get("prompt_tokens") or 0,
        completion_tokens=u.get("completion_tokens") or 0,
        cached_tokens=u.get("cached_tokens") or 0,
        cache_creation_tokens=u.get("cache_creation_tokens") or 0,
    )


# --- simulate -------------------------------------------------------------------------


async def run_simulate(
    state: AppState,
    original: dict[str, Any],
    raw: bytes,
    headers: dict[str, str],
) -> dict[str, Any]:
    """Every stage but execute; an estimate stands in for what execute would do."""
    endpoint = original["endpoint"]
    protocol, operation = endpoint["protocol"], endpoint["operation"]
    _, check = endpoint_for(protocol, operation)
    ex = Exchange(request_id({}), protocol, operation, {}, headers)
    ex.labels["replay_of"] = original["id"]
    ex.raw = raw
    # Decided as live traffic would be today: offline when the gateway or the original was.
    original_offline = (original.get("classification") or {}).get("offline") is True
    ex.offline = state.settings.mode == "offline" or original_offline
    try:
        body = parse_json(raw)
        check(body)
    except AicpError as err:
        ex.error, ex.status = err, err.status
    else:
        ex.body = body
        ex.stream = body.get("stream") is True and operation == "chat"
    await simulate(state.path, ex)
    receipt = await state.receipts.get(ex.receipt_id)
    out = summary(orjson.loads(receipt.data), None)
    out["decisions"] = [[stage, decision] for stage, decision in ex.trace]
    if ex.error is not None:
        out["error"] = {"kind": ex.error.kind, "code": ex.error.code, "message": ex.error.message}
        return out
    # What execute would try first, and the original's usage at its price today.
    chain = ex.route.chain if ex.route is not None else []
    first = next((d for d in chain if d.health.routable()), None)
    out["served"] = None if first is None else first.key
    cost = 0 if first is None else state.prices.cost_micros(first, usage_of(original))
    out["cost_usd"] = cost / MICROS
    out["latency_ms"] = None
    out["estimated"] = ["served", "cost_usd"]
    out["budget"] = await _budget(state, ex)
    return out


async def _budget(state: AppState, ex: Exchange) -> dict[str, Any] | None:
    """The budgets that would apply, their room and the request's worst case, read only."""
    sv = state.budgets
    found = sv.applicable(ex.principal)
    if not found or ex.route is None or ex.operation == "count_tokens":
        return None
    usage = Usage(prompt_tokens=prompt_estimate(ex), completion_tokens=max_output(ex))
    worst = max((state.prices.cost_micros(d, usage) for d in ex.route.chain), default=0)
    rows = []
    for b in found:
        status = await sv.status(b)
        room = status["remaining_usd"]
        fits = room is None or round(room * MICROS) >= worst
        rows.append({"id": b.id, "scope": b.scope, "remaining_usd": room, "fits": fits})
    return {"worst_case_usd": worst / MICROS, "budgets": rows}


# --- live -----------------------------------------------------------------------------


async def run_live(
    state: AppState,
    original: dict[str, Any],
    raw: bytes,
    headers: dict[str, str],
) -> dict[str, Any]:
    """The stored body through the real endpoint handler, in process: its own receipt."""
    endpoint = original["endpoint"]
    got = await invoke(
        state,
        endpoint["protocol"],
        endpoint["operation"],
        raw,
        headers,
        Caller(labels={"replay_of": original["id"]}),
    )
    receipt_id = got.receipt_id
    if receipt_id is None:  # pragma: no cover - every response of the handler carries one
        raise AicpError("the replay's response carried no receipt id")
    receipt = await committed_receipt(state, receipt_id)
    out = summary(receipt, got.content)
    out["decisions"] = receipt.get("decisions")
    return out
