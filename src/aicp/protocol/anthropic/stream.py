"""Streams: canonical chunks -> Anthropic SSE, and Anthropic SSE -> canonical chunks.

An Anthropic stream is `message_start`, `ping`, then for each content block
`content_block_start`, `content_block_delta`s and `content_block_stop`, then
`message_delta` (stop reason, cumulative usage) and `message_stop`. Blocks are
strictly sequential, while OpenAI interleaves text, reasoning and tool-call
deltas freely in one `delta`; the encoder closes one block before it opens the
next. `message_delta` waits for `close()`, because OpenAI's usage chunk comes
after the chunk with the finish reason (or not at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aicp.errors import UpstreamStatusError, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.anthropic.response import (
    anthropic_usage,
    finish_reason,
    openai_usage,
    stop_reason,
    usage_from_anthropic,
)
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.protocol.tokens import estimate_request_tokens
from aicp.providers.base import Usage, usage_from_openai

#: Anthropic error `type` -> HTTP status (Anthropic docs, "Errors").
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _event(payload: Json) -> bytes:
    return sse.encode(dumps(payload), str(payload["type"]))


class StreamEncoder:
    """Canonical OpenAI chunks -> Anthropic SSE bytes for one response."""

    def __init__(self, request: Json) -> None:
        self.model = str(request.get("model") or "")
        self._input_estimate = estimate_request_tokens(request)
        self._started = False
        self._open: str | None = None  # type of the open block
        self._index = -1  # Anthropic index of the newest block
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._chars = 0  # streamed characters, for an estimate when usage never comes

    def feed(self, chunk: Json) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(chunk, out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # Anthropic has one choice; n > 1 is refused on the way in
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._close_block(out)
        return b"".join(out)

    def close(self) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start({}, out)
        self._close_block(out)
        if self._usage is not None:
            usage = anthropic_usage(self._usage)
        else:
            usage = {"output_tokens": (self._chars + 3) // 4}
        delta = {"stop_reason": stop_reason(self._finish) or "end_turn", "stop_sequence": None}
        out.append(_event({"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(_event({"type": "message_stop"}))
        return b"".join(out)

    # --- pieces ---------------------------------------------------------------

    def _start(self, chunk: Json, out: list[bytes]) -> None:
        self._started = True
        ident = str(chunk.get("id") or "stream")
        message: Json = {
            "id": ident if ident.startswith("msg_") else "msg_" + ident,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The real count comes in message_delta; clients show this meanwhile.
            "usage": {"input_tokens": self._input_estimate, "output_tokens": 0},
        }
        out.append(_event({"type": "message_start", "message": message}))
        out.append(_event({"type": "ping"}))

    def _delta(self, delta: Json, out: list[bytes]) -> None:
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            self._block_delta({"type": "thinking_delta", "thinking": reasoning}, out)
        for tb in delta.get("thinking_blocks") or []:
            if isinstance(tb, dict):
                self._thinking_block(tb, out)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._open_block("text", {"type": "text", "text": ""}, out)
            self._block_delta({"type": "text_delta", "text": content}, out)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                self._tool_call(call, out)

    def _thinking_block(self, tb: Json, out: list[bytes]) -> None:
        if tb.get("type") == "redacted_thinking":
            # Opaque and complete in one piece: a block with no deltas.
            self._open_block(
                "redacted_thinking", {"type": "redacted_thinking", "data": tb.get("data", "")}, out
            )
            self._close_block(out)
            return
        if self._open != "thinking":
            # A whole block in one piece (not preceded by reasoning_content deltas).
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            if tb.get("thinking"):
                self._block_delta({"type": "thinking_delta", "thinking": tb["thinking"]}, out)
        if tb.get("signature"):
            self._block_delta({"type": "signature_delta", "signature": tb["signature"]}, out)

    def _tool_call(self, call: Json, out: list[bytes]) -> None:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        if position not in self._tools:
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{position}",
                "name": fn.get("name", ""),
                "input": {},
            }
            self._open_block("tool_use", block, out)
            self._tools[position] = self._index
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._chars += len(arguments)
            payload = {"type": "input_json_delta", "partial_json": arguments}
            index = self._tools[position]
            out.append(_event({"type": "content_block_delta", "index": index, "delta": payload}))

    def _open_block(self, kind: str, block: Json, out: list[bytes]) -> None:
        if self._open == kind and kind in ("text", "thinking"):
            return
        self._close_block(out)
        self._index += 1
        self._open = kind
        out.append(
            _event({"type": "content_block_start", "index": self._index, "content_block": block})
        )

    def _block_delta(self, delta: Json, out: list[bytes]) -> None:
        self._chars += len(str(delta.get("text") or delta.get("thinking") or ""))
        out.append(_event({"type": "content_block_delta", "index": self._index, "delta": delta}))

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(_event({"type": "content_block_stop", "index": self._index}))
            self._open = None


class EventTranslator:
    """Anthropic SSE events -> canonical OpenAI chunks (the `Translator` of providers/http)."""

    def __init__(self, model: str = "") -> None:
        self.usage = Usage()
        self._model = model
        self._id = "msg_stream"
        self._created = int(time.time())
        self._tool_of_block: dict[int, int] = {}  # block index -> OpenAI tool-call index
        self._raw_usage: Json = {}
        self._stopped = False
        self._handlers: dict[str, Callable[[Json], list[Json]]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def feed(self, event: sse.Event) -> list[Json]:
        if not event.data:
            return []
        try:
            data = loads(event.data)
        except ValueError:
            raise UpstreamUnavailable("the upstream sent a stream event that is not JSON") from None
        if not isinstance(data, dict):
            return []
        handler = self._handlers.get(str(data.get("type") or event.event))
        return handler(data) if handler is not None else []  # ping, content_block_stop

    def close(self) -> list[Json]:
        if not self._stopped:
            raise UpstreamUnavailable("the upstream ended its stream before message_stop")
        return []

    # --- events ---------------------------------------------------------------

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _merge_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            # Counts are cumulative; a field left out keeps its earlier value.
            self._raw_usage.update({k: v for k, v in usage.items() if isinstance(v, int)})
            self.usage = usage_from_anthropic(self._raw_usage)

    def _message_start(self, data: Json) -> list[Json]:
        message = data.get("message") or {}
        self._id = str(message.get("id") or self._id)
        self._model = str(message.get("model") or self._model)
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: Json) -> list[Json]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if kind == "redacted_thinking":
            tb = {"type": "redacted_thinking", "data": block.get("data", "")}
            return [self._chunk({"thinking_blocks": [tb]})]
        if kind == "tool_use":
            position = len(self._tool_of_block)
            self._tool_of_block[int(data.get("index") or 0)] = position
            call = {
                "index": position,
                "id": block.get("id", ""),
                "type": "function",
                "function": {"name": block.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, data: Json) -> list[Json]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
        if kind == "signature_delta":
            tb = {"type": "thinking", "thinking": "", "signature": delta.get("signature", "")}
            return [self._chunk({"thinking_blocks": [tb]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            position = self._tool_of_block.get(int(data.get("index") or 0))
            if position is None:
                return []  # input of a server tool: not the client's to run
            call = {"index": position, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, data: Json) -> list[Json]:
        self._merge_usage(data.get("usage"))
        stop = (data.get("delta") or {}).get("stop_reason")
        return [self._chunk({}, finish_reason(stop) or "stop")]

    def _message_stop(self, data: Json) -> list[Json]:
        self._stopped = True
        return [
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": openai_usage(self.usage),
            }
        ]

    def _error(self, data: Json) -> list[Json]:
        err = data.get("error") or {}
        kind = str(err.get("type") or "api_error")
        message = str(err.get("message") or kind)
        raise UpstreamStatusError(
            f"upstream stream error: {message}", status=ERROR_STATUS.get(kind, 500)
        )
