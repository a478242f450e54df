"""Cached answers in and out: a reply stored as an OpenAI chat completion, and served
back as a whole reply or as a stream of canonical chunks.

Storing one form whatever the ingress protocol lets the gateway's own encoders
do the rest: a completion goes out as an Anthropic message or a Responses
object through the same translation a cross-protocol reply takes, and a
stream through the same chunk encoders (docs/caching.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aicp.protocol.jsonutil import Json
from aicp.providers.base import ANTHROPIC, OPENAI, RESPONSES, Reply, Usage

#: Content is streamed in pieces of about this many characters.
PIECE = 64


def completion_of(reply: Reply, model: str) -> Json | None:
    """The reply as an OpenAI chat completion, or None when it cannot be one."""
    if reply.protocol == OPENAI:
        return reply.data
    if reply.protocol == ANTHROPIC:
        from aicp.protocol.anthropic import message_to_completion

        return message_to_completion(reply.data, model)
    if reply.protocol == RESPONSES:
        return response_to_completion(reply.data)
    return None


def response_to_completion(response: Json) -> Json | None:
    """A finished Responses API `response` (its messages' text and its function calls)
    as a chat completion; None for one that did not complete."""
    if response.get("status") not in (None, "completed"):
        return None
    text: list[str] = []
    calls: list[Json] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    text.append(str(part.get("text") or ""))
        elif item.get("type") == "function_call":
            calls.append(
                {
                    "id": item.get("call_id") or item.get("id"),
                    "type": "function",
                    "function": {
                        "name": item.get("name") or "",
                        "arguments": item.get("arguments") or "{}",
                    },
                }
            )
    message: Json = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    raw = response.get("usage") or {}
    prompt, completion = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return {
        "id": response.get("id") or "chatcmpl-cached",
        "object": "chat.completion",
        "created": response.get("created_at") or 0,
        "model": response.get("model") or "",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def cached_reply(completion: Json) -> Reply:
    """A whole reply from the cache: it costs nothing, so its usage (billed) is zero; the
    body keeps the original usage, which is what the client reads."""
    return Reply(OPENAI, completion, Usage())


def _pieces(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + PIECE)
        space = text.rfind(" ", start + 1, end)
        if end < len(text) and space > start:
            end = space
        out.append(text[start:end])
        start = end
    return out


class CachedStream:
    """A cached completion as a stream of `chat.completion.chunk`s (canonical form)."""

    protocol = OPENAI
    passthrough = False

    def __init__(self, completion: Json, request: Json) -> None:
        self.completion = completion
        self.request = request
        self.usage = Usage()

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Json]:
        c = self.completion
        base = {
            "id": c.get("id") or "chatcmpl-cached",
            "object": "chat.completion.chunk",
            "created": c.get("created") or 0,
            "model": c.get("model") or "",
        }

        def chunk(index: int, delta: Json, finish: Any = None) -> Json:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        for choice in c.get("choices") or []:
            i = choice.get("index", 0)
            message = choice.get("message") or {}
            yield chunk(i, {"role": "assistant", "content": ""})
            content = message.get("content")
            if isinstance(content, str):
                for piece in _pieces(content):
                    yield chunk(i, {"content": piece})
            for n, call in enumerate(message.get("tool_calls") or []):
                fn = call.get("function") or {}
                delta = {
                    "index": n,
                    "id": call.get("id"),
                    "type": "function",
                    "function": {"name": fn.get("name"), "arguments": fn.get("arguments", "")},
                }
                yield chunk(i, {"tool_calls": [delta]})
            yield chunk(i, {}, choice.get("finish_reason") or "stop")
        opts = self.request.get("stream_options") or {}
        if isinstance(opts, dict) and opts.get("include_usage") and c.get("usage"):
            yield {**base, "choices": [], "usage": c["usage"]}

    async def aclose(self) -> None:
        return None


def _events(data: bytes) -> list[tuple[str | None, Json]]:
    """(event name, JSON data) of each SSE event; `[DONE]` and comments are skipped."""
    import orjson

    out: list[tuple[str | None, Json]] = []
    for block in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        payload: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                payload.append(line[5:].strip())
        if not payload or payload == [b"[DONE]"]:
            continue
        try:
            value = orjson.loads(b"\n".join(payload))
        except orjson.JSONDecodeError:
            return []
        if isinstance(value, dict):
            out.append((name, value))
    return out


def completion_from_stream(data: bytes, protocol: str, model: str) -> Json | None:
    """The streamed answer the client got (SSE in its protocol) as one OpenAI chat
    completion, or None when the stream did not finish cleanly or is of another kind."""
    events = _events(data)
    if protocol == OPENAI:
        return _from_openai(events)
    if protocol == RESPONSES:
        done = [d for _, d in events if d.get("type") == "response.completed"]
        response = done[-1].get("response") if done else None
        return response_to_completion(response) if isinstance(response, dict) else None
    if protocol == ANTHROPIC:
        message = _anthropic_message(events)
        if message is None:
            return None
        from aicp.protocol.anthropic import message_to_completion

        return message_to_completion(message, model)
    return None


def _from_openai(events: list[tuple[str | None, Json]]) -> Json | None:
    if not events:
        return None
    head = events[0][1]
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for _, chunk in events:
        if chunk.get("error"):
            return None
        usage = chunk.get("usage") or usage
        for c in chunk.get("choices") or []:
            i = int(c.get("index", 0))
            slot = choices.setdefault(i, {"content": "", "calls": {}, "finish": None})
            delta = c.get("delta") or {}
            if isinstance(delta.get("content"), str):
                slot["content"] += delta["content"]
            for call in delta.get("tool_calls") or []:
                n = int(call.get("index", 0))
                made = slot["calls"].setdefault(n, {"id": None, "name": "", "arguments": ""})
                made["id"] = call.get("id") or made["id"]
                fn = call.get("function") or {}
                made["name"] += fn.get("name") or ""
                made["arguments"] += fn.get("arguments") or ""
            slot["finish"] = c.get("finish_reason") or slot["finish"]
    if not choices or any(slot["finish"] is None for slot in choices.values()):
        return None  # cut short: not an answer to keep
    out = []
    for i, slot in sorted(choices.items()):
        message: dict[str, Any] = {"role": "assistant", "content": slot["content"] or None}
        if slot["calls"]:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for _, c in sorted(slot["calls"].items())
            ]
        out.append({"index": i, "message": message, "finish_reason": slot["finish"]})
    completion: Json = {
        "id": head.get("id") or "chatcmpl-cached",
        "object": "chat.completion",
        "created": head.get("created") or 0,
        "model": head.get("model") or "",
        "choices": out,
    }
    if usage:
        completion["usage"] = usage
    return completion


def _anthropic_message(events: list[tuple[str | None, Json]]) -> Json | None:
    message: Json | None = None
    blocks: dict[int, Json] = {}
    partial: dict[int, str] = {}
    stopped = False
    for name, data in events:
        kind = data.get("type") or name
        if kind == "message_start":
            message = dict(data.get("message") or {})
        elif kind == "content_block_start":
            blocks[int(data.get("index", 0))] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            i, delta = int(data.get("index", 0)), data.get("delta") or {}
            block = blocks.setdefault(i, {"type": "text", "text": ""})
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif delta.get("type") == "input_json_delta":
                partial[i] = partial.get(i, "") + delta.get("partial_json", "")
        elif kind == "message_delta" and message is not None:
            message.update({k: v for k, v in (data.get("delta") or {}).items() if v is not None})
            usage = dict(message.get("usage") or {})
            usage.update(data.get("usage") or {})
            message["usage"] = usage
        elif kind == "message_stop":
            stopped = True
        elif kind == "error":
            return None
    if message is None or not stopped:
        return None
    import orjson

    for i, text in partial.items():
        try:
            blocks[i]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            return None
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message
