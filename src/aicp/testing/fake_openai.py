"""Fake upstream routes in the OpenAI wire format (chat, embeddings, models)."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aicp.testing.upstream import retry_headers, send_chunks

if TYPE_CHECKING:
    from aicp.testing.upstream import FakeUpstream, Fault


def error_response(fault: Fault) -> web.Response:
    kind = "rate_limit_error" if fault.status == 429 else "server_error"
    body = {"error": {"message": fault.message, "type": kind, "param": None, "code": None}}
    return web.Response(
        body=orjson.dumps(body),
        status=fault.status or 500,
        headers={"content-type": "application/json", **retry_headers(fault)},
    )


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    if not tools or body.get("tool_choice") == "none":
        return None
    name = tools[0]["function"]["name"]
    return {
        "id": "call_fake_1",
        "type": "function",
        "function": {"name": name, "arguments": '{"city": "Paris"}'},
    }


def register(app: web.Application, up: FakeUpstream) -> None:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fault = await up.arrive(request, body)
        if fault is not None and fault.status:
            return error_response(fault)
        model = body.get("model", "fake-model")
        cid = "chatcmpl-" + hashlib.sha256(orjson.dumps(body)).hexdigest()[:16]
        created = int(time.time())
        tool = _tool_call(body)
        text = up.reply if up.respond is None else up.respond(body)
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            text = '{"answer": "fake"}'
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else text}
            if tool:
                message["tool_calls"] = [tool]
            n = int(body.get("n") or 1)
            data = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": i,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if tool else "stop",
                    }
                    for i in range(n)
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
            return web.Response(body=orjson.dumps(data), content_type="application/json")

        def event(**fields: Any) -> bytes:
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                **fields,
            }
            return b"data: " + orjson.dumps(c) + b"\n\n"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return event(choices=[choice])

        out = [chunk({"role": "assistant", "content": ""})]
        if tool:
            fn = tool["function"]
            out.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": tool["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            half = len(fn["arguments"]) // 2
            for part in (fn["arguments"][:half], fn["arguments"][half:]):
                out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        else:
            size = max(1, -(-len(text) // up.chunks))
            out.extend(chunk({"content": text[i : i + size]}) for i in range(0, len(text), size))
        out.append(chunk({}, "tool_calls" if tool else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            out.append(event(choices=[], usage=usage))
        out.append(b"data: [DONE]\n\n")
        return await send_chunks(request, out, fault)

    async def embeddings(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        fault = await up.arrive(request, body)
        if fault is not None and fault.status:
            return error_response(fault)
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [round(0.1 * (i + 1) * (j + 1), 4) for j in range(up.embedding_dim)],
            }
            for i in range(len(items))
        ]
        out = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        up.record(request, None)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in up.models]
        return web.Response(
            body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
        )

    for prefix in ("/v1", ""):
        app.router.add_post(prefix + "/chat/completions", chat)
        app.router.add_post(prefix + "/embeddings", embeddings)
        app.router.add_get(prefix + "/models", models)
    # Azure OpenAI deployment URLs carry the model in the path.
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
