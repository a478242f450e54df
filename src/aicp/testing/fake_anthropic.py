"""Fake upstream routes in the Anthropic wire format, direct and on Vertex AI.

    POST /v1/messages                   JSON or SSE (message_start, ping, blocks, message_delta,
                                        message_stop); a thinking block when thinking is on, a
                                        tool_use block when tools are given
    POST /v1/messages/count_tokens      {"input_tokens": count_input_tokens(body)}
    GET  /v1/models                     Anthropic's list format (requests with anthropic-version)
    POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict
                                        ... :streamRawPredict, and count-tokens:rawPredict

The builders (`build_message`, `stream_events`, `error_body`) are public so
that other fakes serving Anthropic models (Bedrock) reuse them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aicp.testing.upstream import retry_headers, send_chunks

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

    from aicp.testing.upstream import FakeUpstream, Fault

Json = dict[str, Any]

THINKING_TEXT = "The user wants a short answer."
THINKING_SIGNATURE = "sig_fake_EqQBCgIYAhIM"
TOOL_PREAMBLE = "Let me check."
TOOL_INPUT: Json = {"city": "Paris", "unit": "celsius"}
#: Usage of every answer: 6 fresh input tokens, 3 read from and 2 written to the cache.
USAGE: Json = {
    "input_tokens": 6,
    "cache_creation_input_tokens": 2,
    "cache_read_input_tokens": 3,
    "output_tokens": 7,
}
VERTEX_VERSION = "vertex-2023-10-16"

#: HTTP status -> Anthropic error `type` (Anthropic docs, "Errors").
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --- builders -----------------------------------------------------------------


def error_body(status: int, message: str) -> Json:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(error_body(status, message)),
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
    )


def fault_response(fault: Fault) -> web.Response:
    status = fault.status or 500
    return error_response(status, fault.message, retry_headers(fault))


def count_input_tokens(body: Json) -> int:
    """The fake's token count: deterministic and unlike the gateway's own estimate."""
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    return 7 + len(orjson.dumps(parts)) // 3


def build_message(body: Json, up: FakeUpstream) -> Json:
    """The answer to a messages request, as Anthropic would send it whole."""
    content: list[Json] = []
    thinking = body.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        content.append(
            {"type": "thinking", "thinking": THINKING_TEXT, "signature": THINKING_SIGNATURE}
        )
    tools = [t for t in body.get("tools") or [] if "name" in t]
    choice = body.get("tool_choice") or {}
    if tools and choice.get("type") != "none":
        name = choice.get("name") if choice.get("type") == "tool" else tools[0]["name"]
        content.append({"type": "text", "text": TOOL_PREAMBLE})
        content.append(
            {"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": TOOL_INPUT}
        )
        stop = "tool_use"
    else:
        words = up.reply.split(" ")
        limit = int(body.get("max_tokens") or len(words))
        stop = "max_tokens" if limit < len(words) else "end_turn"
        content.append({"type": "text", "text": " ".join(words[:limit])})
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return {
        "id": "msg_fake_" + digest[:16],
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake-model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": dict(USAGE),
    }


def _pieces(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(index: int, block: Json, pieces: int) -> list[Json]:
    kind = block["type"]
    deltas: list[Json] = []
    if kind == "text":
        start: Json = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], pieces)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], 2)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        start = {**block, "input": {}}
        # Like the real API: an empty first piece, then the JSON in several pieces.
        raw = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *_pieces(raw, 3)]]
    else:
        start = block
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def stream_events(message: Json, pieces: int = 4) -> list[Json]:
    """The event payloads Anthropic streams for `message`, in order."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[Json] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block, pieces))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    # Cumulative output only: clients must keep message_start's input counts.
    events.append(
        {
            "type": "message_delta",
            "delta": delta,
            "usage": {"output_tokens": usage["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return events


def encode_event(event: Json) -> bytes:
    name = str(event["type"]).encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def check_body(body: Any, *, vertex: bool = False) -> str | None:
    """What the real API would refuse in a messages body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if vertex and body.get("anthropic_version") != VERTEX_VERSION:
        return f"anthropic_version: must be {VERTEX_VERSION!r}"
    if vertex and "model" in body:
        return "model: Extra inputs are not permitted"
    if not vertex and not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not isinstance(body.get("messages"), list):
        return "messages: Field required"
    return None


# --- routes -------------------------------------------------------------------


async def _read(
    request: web.Request, up: FakeUpstream
) -> tuple[Any, Fault | None, web.Response | None]:
    """The parsed body (recorded) and the fault to apply, or the response that ends it early."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        up.record(request, None)
        error = error_response(400, "There was an error parsing the body of your request")
        return None, None, error
    fault = await up.arrive(request, body)
    if fault is not None and fault.status:
        return body, fault, fault_response(fault)
    return body, fault, None


def _authorised(request: web.Request, vertex: bool) -> bool:
    if vertex:
        return request.headers.get("authorization", "").startswith("Bearer ")
    return bool(request.headers.get("x-api-key"))


async def answer(
    request: web.Request, up: FakeUpstream, body: Json, stream: bool, fault: Fault | None
) -> web.StreamResponse:
    """The JSON message or its SSE stream for an accepted messages body."""
    message = build_message(body, up)
    if not stream:
        return web.Response(body=orjson.dumps(message), content_type="application/json")
    chunks = [encode_event(e) for e in stream_events(message, up.chunks)]
    return await send_chunks(request, chunks, fault)


def register(app: web.Application, up: FakeUpstream) -> None:
    async def messages(request: web.Request) -> web.StreamResponse:
        body, fault, early = await _read(request, up)
        if early is not None:
            return early
        if not _authorised(request, vertex=False):
            return error_response(401, "x-api-key header is required")
        problem = check_body(body)
        if problem:
            return error_response(400, problem)
        return await answer(request, up, body, bool(body.get("stream")), fault)

    async def count_tokens(request: web.Request) -> web.Response:
        body, _, early = await _read(request, up)
        if early is not None:
            return early
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_response(400, "messages: Field required")
        if "max_tokens" in body:
            return error_response(400, "max_tokens: Extra inputs are not permitted")
        return web.json_response({"input_tokens": count_input_tokens(body)})

    async def vertex(request: web.Request) -> web.StreamResponse:
        model, _, verb = request.match_info["target"].rpartition(":")
        if verb not in ("rawPredict", "streamRawPredict"):
            return error_response(404, f"unknown method {verb!r}")
        if model == "count-tokens":
            return await count_tokens(request)
        body, fault, early = await _read(request, up)
        if early is not None:
            return early
        if not _authorised(request, vertex=True):
            return error_response(401, "an OAuth bearer token is required")
        problem = check_body(body, vertex=True)
        if problem:
            return error_response(400, problem)
        body = {**body, "model": model}
        return await answer(request, up, body, verb == "streamRawPredict", fault)

    async def models(request: web.Request) -> web.Response:
        up.record(request, None)
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in up.models
        ]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        return web.json_response(page)

    @web.middleware
    async def anthropic_models(request: web.Request, handler: Handler) -> web.StreamResponse:
        # GET /v1/models belongs to the OpenAI fake too; Anthropic clients say who they are.
        if request.path == "/v1/models" and "anthropic-version" in request.headers:
            return await models(request)
        return await handler(request)

    app.middlewares.append(anthropic_models)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post(
        "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{target}", vertex
    )
