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
from aicp.providers.base import ANTHROPIC, OPENAI, Reply, Usage

#: Content is streamed in pieces of about this many characters.
PIECE = 64


def completion_of(reply: Reply, model: str) -> Json | None:
    """The reply as an OpenAI chat completion, or None when it cannot be (a Responses
    API object, which is not cached)."""
    if reply.protocol == OPENAI:
        return reply.data
    if reply.protocol == ANTHROPIC:
        from aicp.protocol.anthropic import message_to_completion

        return message_to_completion(reply.data, model)
    return None


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
