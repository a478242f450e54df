"""The two ways /admin/replay re-runs a stored request: simulate and live.

Both run the request as the admin who asked (their key's limits, budgets and
right to force routes apply, not the original key's: a replay must not spend
someone else's money) and mark its receipt with the original's id in
`labels.replay_of`. That mark travels in process only (an Exchange label, or
the ASGI scope key below), never in a header, so no client can claim it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from aicp.accounting.budget_stages import max_output, prompt_estimate
from aicp.api.asgi import Message, header_dict, request_id
from aicp.api.gateway import Endpoint, Validator
from aicp.errors import AicpError, RequestError
from aicp.plane.exchange import Exchange
from aicp.plane.simulate import simulate
from aicp.protocol.validate import parse_json
from aicp.providers.base import Usage
from aicp.receipts.log import ReceiptNotFound
from aicp.receipts.output import output_text
from aicp.storage.schema import MICROS

if TYPE_CHECKING:
    from aicp.state import AppState

#: The ASGI scope key api/gateway.py reads into the receipt's `labels.replay_of`.
REPLAY_SCOPE_KEY = "aicp.replay_of"

#: How long a live replay waits for its receipt when receipts are not durable.
RECEIPT_WAIT_S = 5.0


def endpoint_for(protocol: str, operation: str) -> tuple[str, Validator]:
    """The LLM endpoint (path, body check) that serves (protocol, operation)."""
    # Imported here: app.py imports the API modules, this one included.
    from aicp.app import _ENDPOINTS

    for path, (p, op, check) in _ENDPOINTS.items():
        if (p, op) == (protocol, operation):
            return "/v1" + path, check
    raise RequestError(f"no endpoint serves {protocol} {operation}", status=409)


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


@dataclass(slots=True)
class Captured:
    """What the gateway sent back to the in-process replay."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)


async def run_live(
    state: AppState,
    original: dict[str, Any],
    raw: bytes,
    headers: dict[str, str],
) -> dict[str, Any]:
    """The stored body through the real endpoint handler, in process: its own receipt."""
    endpoint = original["endpoint"]
    path, check = endpoint_for(endpoint["protocol"], endpoint["operation"])
    handler = Endpoint(state, endpoint["protocol"], endpoint["operation"], check)
    sent = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    sent += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": sent,
        "client": ("127.0.0.1", 0),
        "server": None,
        REPLAY_SCOPE_KEY: original["id"],
    }
    got = Captured()
    done = asyncio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await done.wait()  # nobody disconnects from an in-process call
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            got.status = message["status"]
            got.headers = header_dict(message)
        elif message["type"] == "http.response.body":
            got.body.append(message.get("body", b""))

    try:
        await handler(scope, receive, send)
    finally:
        done.set()
    receipt_id = got.headers.get("x-aicp-receipt-id")
    if receipt_id is None:  # pragma: no cover - every response of the handler carries one
        raise AicpError("the replay's response carried no receipt id")
    receipt = orjson.loads((await _committed(state, receipt_id)).data)
    out = summary(receipt, b"".join(got.body))
    out["decisions"] = receipt.get("decisions")
    return out


async def _committed(state: AppState, receipt_id: str) -> Any:
    """The receipt's row, waiting a little for its commit when receipts are not durable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECEIPT_WAIT_S
    while True:
        try:
            return await state.receipts.get(receipt_id)
        except ReceiptNotFound:
            if loop.time() > deadline:
                raise AicpError(f"the replay's receipt {receipt_id} was not recorded") from None
            await asyncio.sleep(0.02)
