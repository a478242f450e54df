"""Fake upstream route for OpenAI's Responses API (`POST /v1/responses`), JSON and SSE.

The reply is `up.reply` as one message, or a `function_call` of the first
function tool when tools are given (unless `tool_choice` is "none"); usage is
fixed (11 in, 3 of them cached, 7 out).
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aicp.testing.fake_openai import error_response
from aicp.testing.upstream import send_chunks

if TYPE_CHECKING:
    from aicp.testing.upstream import FakeUpstream

USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 3},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 18,
}
FUNCTION_ARGUMENTS = '{"city": "Paris"}'


def _output(body: dict[str, Any], text: str, digest: str) -> dict[str, Any]:
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools and body.get("tool_choice") != "none":
        return {
            "id": "fc_" + digest,
            "type": "function_call",
            "status": "completed",
            "call_id": "call_fake_1",
            "name": tools[0]["name"],
            "arguments": FUNCTION_ARGUMENTS,
        }
    if ((body.get("text") or {}).get("format") or {}).get("type") in ("json_schema", "json_object"):
        text = '{"answer": "fake"}'
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": "msg_" + digest,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def register(app: web.Application, up: FakeUpstream) -> None:
    async def responses(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fault = await up.arrive(request, body)
        if fault is not None and fault.status:
            return error_response(fault)
        digest = hashlib.sha256(orjson.dumps(body)).hexdigest()[:16]
        item = _output(body, up.reply, digest)
        response: dict[str, Any] = {
            "id": "resp_" + digest,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "model": body.get("model", "fake-model"),
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "usage": USAGE,
        }
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(response), content_type="application/json")
        return await send_chunks(request, _events(response, item, up.chunks), fault)

    for prefix in ("/v1", ""):
        app.router.add_post(prefix + "/responses", responses)
    app.router.add_post("/openai/v1/responses", responses)  # Azure's v1 surface


def _events(response: dict[str, Any], item: dict[str, Any], chunks: int) -> list[bytes]:
    out: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(out), **fields}
        out.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n")

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    event("response.created", response=started)
    event("response.in_progress", response=started)
    at = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        event("response.output_item.added", output_index=0, item={**item, "arguments": ""})
        args = item["arguments"]
        for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
            event("response.function_call_arguments.delta", **at, delta=piece)
        event("response.function_call_arguments.done", **at, arguments=args)
    else:
        text = item["content"][0]["text"]
        event("response.output_item.added", output_index=0, item={**item, "content": []})
        empty = {**item["content"][0], "text": ""}
        event("response.content_part.added", **at, content_index=0, part=empty)
        size = max(1, -(-len(text) // chunks))
        for i in range(0, len(text), size):
            delta = text[i : i + size]
            event("response.output_text.delta", **at, content_index=0, delta=delta, logprobs=[])
        event("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
        event("response.content_part.done", **at, content_index=0, part=item["content"][0])
    event("response.output_item.done", output_index=0, item=item)
    event("response.completed", response=response)
    return out
