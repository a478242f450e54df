"""Fake upstream routes in the AWS Bedrock Runtime wire format.

`/model/{modelId}/converse` answers JSON, `/converse-stream` the binary event
stream (split across writes so that messages straddle them), `/invoke` a Titan
text embedding. Errors look like Bedrock's: `{"message": ...}` with the error
name in `x-amzn-ErrorType`. A request that declares tools gets a toolUse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aicp.testing import eventstream
from aicp.testing.upstream import retry_headers, send_chunks

if TYPE_CHECKING:
    from aicp.testing.upstream import FakeUpstream, Fault

_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}

USAGE = {
    "inputTokens": 11,
    "outputTokens": 7,
    "totalTokens": 21,
    "cacheReadInputTokens": 3,
    "cacheWriteInputTokens": 0,
}

TOOL_INPUT = {"city": "Paris"}


def error_response(fault: Fault) -> web.Response:
    status = fault.status or 500
    kind = _ERROR_TYPES.get(status, "InternalServerException")
    return web.Response(
        body=orjson.dumps({"message": fault.message}),
        status=status,
        headers={
            "content-type": "application/json",
            "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            **retry_headers(fault),
        },
    )


def _tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = (body.get("toolConfig") or {}).get("tools") or []
    if not tools:
        return None
    return {"toolUseId": "tooluse_fake_1", "name": tools[0]["toolSpec"]["name"]}


def _converse(up: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    tool = _tool(body)
    if tool is not None:
        content: list[dict[str, Any]] = [{"toolUse": {**tool, "input": TOOL_INPUT}}]
    else:
        content = [{"text": up.reply}]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use" if tool else "end_turn",
        "usage": USAGE,
        "metrics": {"latencyMs": 42},
    }


def _stream_events(up: FakeUpstream, body: dict[str, Any]) -> list[bytes]:
    ev = eventstream.event
    out = [ev("messageStart", {"role": "assistant"})]
    delta: dict[str, Any]
    tool = _tool(body)
    if tool is not None:
        out.append(ev("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": tool}}))
        args = orjson.dumps(TOOL_INPUT).decode()
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            delta = {"toolUse": {"input": part}}
            out.append(ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}))
    else:
        text = up.reply
        size = max(1, -(-len(text) // up.chunks))
        for i in range(0, len(text), size):
            delta = {"text": text[i : i + size]}
            out.append(ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}))
    out.append(ev("contentBlockStop", {"contentBlockIndex": 0}))
    out.append(ev("messageStop", {"stopReason": "tool_use" if tool else "end_turn"}))
    out.append(ev("metadata", {"usage": USAGE, "metrics": {"latencyMs": 42}}))
    return out


def split_writes(messages: list[bytes]) -> list[bytes]:
    """Re-cut the byte stream so that most writes end inside a message."""
    data = b"".join(messages)
    cuts = sorted({len(data) * k // (len(messages) + 1) for k in range(1, len(messages) + 1)})
    pieces, start = [], 0
    for cut in [*cuts, len(data)]:
        if cut > start:
            pieces.append(data[start:cut])
            start = cut
    return pieces


def _embedding(up: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    text = str(body.get("inputText") or "")
    dim = int(body.get("dimensions") or up.embedding_dim)
    seed = len(text) + 1
    return {
        "embedding": [round(0.01 * seed * (j + 1), 4) for j in range(dim)],
        "inputTextTokenCount": max(1, len(text.split())),
    }


def register(app: web.Application, up: FakeUpstream) -> None:
    async def begin(request: web.Request) -> tuple[dict[str, Any], Fault | None]:
        body = orjson.loads(await request.read())
        return body, await up.arrive(request, body)

    async def converse(request: web.Request) -> web.Response:
        body, fault = await begin(request)
        if fault is not None and fault.status:
            return error_response(fault)
        return web.Response(body=orjson.dumps(_converse(up, body)), content_type="application/json")

    async def converse_stream(request: web.Request) -> web.StreamResponse:
        body, fault = await begin(request)
        if fault is not None and fault.status:
            return error_response(fault)
        chunks = split_writes(_stream_events(up, body))
        return await send_chunks(
            request, chunks, fault, content_type="application/vnd.amazon.eventstream"
        )

    async def invoke(request: web.Request) -> web.Response:
        body, fault = await begin(request)
        if fault is not None and fault.status:
            return error_response(fault)
        return web.Response(
            body=orjson.dumps(_embedding(up, body)), content_type="application/json"
        )

    app.router.add_post("/model/{model_id}/converse", converse)
    app.router.add_post("/model/{model_id}/converse-stream", converse_stream)
    app.router.add_post("/model/{model_id}/invoke", invoke)
