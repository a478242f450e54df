"""Small helpers for the raw ASGI handlers of the hot path.

The hot endpoints skip Starlette's Request/Response objects: measured in
../shared/bench, Starlette's StreamingResponse cost about twice the CPU per
stream of writing to `send` directly (docs/decisions.md).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aicp.errors import BodyTooLarge, InvalidRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def request_id(headers: dict[str, str]) -> str:
    """The client's x-request-id when it is sane, else a new one."""
    rid = headers.get("x-request-id")
    if rid and len(rid) <= 128 and rid.isascii() and rid.isprintable():
        return rid
    return "req_" + os.urandom(12).hex()


def header_dict(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("content-length is not a number") from None
        if size > limit:
            raise BodyTooLarge(f"request body of {size} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge(f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def extra_headers(rid: str, more: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    out = [(b"x-request-id", rid.encode())]
    if more:
        out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in more.items())
    return out
