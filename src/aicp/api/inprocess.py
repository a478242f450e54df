"""Calling the gateway's own LLM endpoints from inside the process.

Live replays (api/replay_run.py) and pipeline stages (pipeline/inprocess.py)
send a request through the real endpoint handler, so keys, policy, budgets,
guardrails and receipts apply exactly as for a client. What only in-process
callers may say travels in ASGI scope keys (`extra`), never in headers, so no
client can claim it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from aicp.api.asgi import Message, header_dict
from aicp.api.gateway import IN_PROCESS, Endpoint
from aicp.errors import AicpError, RequestError
from aicp.receipts.log import ReceiptNotFound

if TYPE_CHECKING:
    from aicp.plane.exchange import Exchange
    from aicp.state import AppState


#: How long a caller waits for a receipt when receipts are not durable.
RECEIPT_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling from inside the process, and what their receipts carry."""

    #: Receipt labels (`replay_of` for a live replay; a pipeline's run and stage).
    labels: dict[str, str] = field(default_factory=dict)
    #: Authenticate as this key id instead of the Authorization header ("master" for the
    #: master key, "" for the anonymous caller of an open gateway); None: the header.
    on_behalf_of: str | None = None

    def mark(self, ex: Exchange) -> None:
        ex.labels.update(self.labels)
        ex.on_behalf_of = self.on_behalf_of


@dataclass(slots=True)
class Captured:
    """What the gateway sent back to the in-process caller."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)

    @property
    def content(self) -> bytes:
        return b"".join(self.body)

    @property
    def receipt_id(self) -> str | None:
        return self.headers.get("x-aicp-receipt-id")


def endpoint_for(protocol: str, operation: str) -> tuple[str, Any]:
    """The LLM endpoint (path, body check) that serves (protocol, operation)."""
    # Imported here: app.py imports the API modules, this one included.
    from aicp.app import _ENDPOINTS

    for path, (p, op, check) in _ENDPOINTS.items():
        if (p, op) == (protocol, operation):
            return "/v1" + path, check
    raise RequestError(f"no endpoint serves {protocol} {operation}", status=409)


async def invoke(
    state: AppState,
    protocol: str,
    operation: str,
    raw: bytes,
    headers: dict[str, str],
    caller: Caller | None = None,
) -> Captured:
    """`raw` through the endpoint handler of (protocol, operation); the whole response."""
    path, check = endpoint_for(protocol, operation)
    handler = Endpoint(state, protocol, operation, check)
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
        IN_PROCESS: caller or Caller(),
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
    return got


async def committed_receipt(state: AppState, receipt_id: str) -> dict[str, Any]:
    """The receipt, waiting a little for its commit when receipts are not durable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECEIPT_WAIT_S
    while True:
        try:
            row = await state.receipts.get(receipt_id)
        except ReceiptNotFound:
            if loop.time() > deadline:
                raise AicpError(f"the receipt {receipt_id} was not recorded") from None
            await asyncio.sleep(0.02)
        else:
            data: dict[str, Any] = orjson.loads(row.data)
            return data
