"""Fake upstream routes in Google's Gemini wire format: AI Studio and Vertex AI.

AI Studio: POST /v1beta/models/{model}:generateContent, :streamGenerateContent
(`alt=sse` gives SSE events, CRLF-delimited as Google sends them; without it
a JSON array), :batchEmbedContents, and GET /v1beta/models with pagination.
Vertex: the same under /v1/projects/{p}/locations/{l}/publishers/google/models/,
plus :predict for embeddings. aiohttp cannot route on a colon inside a path
segment, so `{tail}` takes "model:method" and we split it ourselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aicp.testing.upstream import retry_headers, send_chunks

if TYPE_CHECKING:
    from aicp.testing.upstream import FakeUpstream, Fault

#: Models per page of GET /v1beta/models, small so that tests see pagination.
PAGE_SIZE = 2

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

Handler = Callable[[web.Request, str, Any, "Fault | None"], Awaitable[web.StreamResponse]]


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
    )


def fault_response(fault: Fault) -> web.Response:
    return error_response(fault.status or 500, fault.message, retry_headers(fault))


def _usage() -> dict[str, int]:
    return {
        "promptTokenCount": 11,
        "candidatesTokenCount": 7,
        "totalTokenCount": 18,
        "cachedContentTokenCount": 3,
    }


def _function_call(body: dict[str, Any]) -> dict[str, Any] | None:
    decls = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if not decls or mode == "NONE":
        return None
    return {"name": decls[0]["name"], "args": {"city": "Paris"}}


def _reply_text(up: FakeUpstream, body: dict[str, Any]) -> str:
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        return '{"answer": "fake"}'
    return up.reply


def _response_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body)).hexdigest()[:16]


def _complete(up: FakeUpstream, body: dict[str, Any], model: str) -> dict[str, Any]:
    call = _function_call(body)
    part = {"functionCall": call} if call else {"text": _reply_text(up, body)}
    n = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
    candidates = [
        {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": i}
        for i in range(n)
    ]
    return {
        "candidates": candidates,
        "usageMetadata": _usage(),
        "modelVersion": model,
        "responseId": _response_id(body),
    }


def _stream_events(up: FakeUpstream, body: dict[str, Any], model: str) -> list[dict[str, Any]]:
    rid = _response_id(body)
    call = _function_call(body)
    if call:
        slices: list[dict[str, Any]] = [{"functionCall": call}]
    else:
        text = _reply_text(up, body)
        size = max(1, -(-len(text) // up.chunks))
        slices = [{"text": text[i : i + size]} for i in range(0, len(text), size)]
    events = []
    for i, part in enumerate(slices):
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        event: dict[str, Any] = {"candidates": [cand], "modelVersion": model, "responseId": rid}
        if i == len(slices) - 1:
            cand["finishReason"] = "STOP"
            event["usageMetadata"] = _usage()
        else:
            event["usageMetadata"] = {"promptTokenCount": 11, "totalTokenCount": 11}
        events.append(event)
    return events


def register(app: web.Application, up: FakeUpstream) -> None:
    async def generate(
        request: web.Request, model: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        data = _complete(up, body, model)
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def stream(
        request: web.Request, model: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        events = _stream_events(up, body, model)
        if request.query.get("alt") == "sse":
            chunks = [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events]
            return await send_chunks(request, chunks, fault)
        array = b"[" + b",\r\n".join(orjson.dumps(e) for e in events) + b"]"
        return await send_chunks(request, [array], fault, "application/json")

    async def embed_batch(
        request: web.Request, model: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        embeddings = [
            {"values": _vector(up, i, r.get("outputDimensionality"))}
            for i, r in enumerate(body.get("requests") or [])
        ]
        return web.json_response({"embeddings": embeddings})

    async def predict(
        request: web.Request, model: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        params = body.get("parameters") or {}
        predictions = [
            {
                "embeddings": {
                    "values": _vector(up, i, params.get("outputDimensionality")),
                    "statistics": {"token_count": 4, "truncated": False},
                }
            }
            for i, _ in enumerate(body.get("instances") or [])
        ]
        return web.json_response({"predictions": predictions})

    methods: dict[str, Handler] = {
        "generateContent": generate,
        "streamGenerateContent": stream,
        "batchEmbedContents": embed_batch,
        "predict": predict,
    }

    async def dispatch(request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["tail"].partition(":")
        body = orjson.loads(await request.read() or b"{}")
        handler = methods.get(method)
        if handler is None:
            up.record(request, body)
            return error_response(404, f"unknown method {method!r}")
        fault = await up.arrive(request, body)
        if fault is not None and fault.status:
            return fault_response(fault)
        if not request.headers.get("x-goog-api-key") and not request.headers.get("authorization"):
            return error_response(401, "no API key or access token")
        return await handler(request, model, body, fault)

    async def list_models(request: web.Request) -> web.Response:
        up.record(request, None)
        start = int(request.query.get("pageToken") or 0)
        names = [*up.models, "fake-embedding"]
        page = names[start : start + PAGE_SIZE]
        models = [
            {
                "name": f"models/{m}",
                "supportedGenerationMethods": (
                    ["embedContent"] if "embedding" in m else ["generateContent", "countTokens"]
                ),
            }
            for m in page
        ]
        out: dict[str, Any] = {"models": models}
        if start + PAGE_SIZE < len(names):
            out["nextPageToken"] = str(start + PAGE_SIZE)
        return web.json_response(out)

    app.router.add_post("/v1beta/models/{tail}", dispatch)
    app.router.add_get("/v1beta/models", list_models)
    app.router.add_post(
        "/v1/projects/{project}/locations/{location}/publishers/google/models/{tail}", dispatch
    )


def _vector(up: FakeUpstream, i: int, dims: int | None) -> list[float]:
    return [round(0.1 * (i + 1) * (j + 1), 4) for j in range(dims or up.embedding_dim)]
