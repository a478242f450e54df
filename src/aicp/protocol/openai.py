"""OpenAI wire format: encoding canonical chunks for an OpenAI client."""

from __future__ import annotations

from aicp.protocol import sse
from aicp.protocol.jsonutil import Json, dumps


class ChunkEncoder:
    """Canonical chunks -> OpenAI SSE; drops the usage chunk unless it was asked for."""

    __slots__ = ("include_usage",)

    def __init__(self, request: Json) -> None:
        opts = request.get("stream_options")
        self.include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))

    def feed(self, chunk: Json) -> bytes:
        if not chunk.get("choices") and "usage" in chunk and not self.include_usage:
            return b""
        if not self.include_usage and "usage" in chunk:
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        return sse.encode(dumps(chunk))

    def close(self) -> bytes:
        return sse.DONE


#: Canonical-form extensions that carry Anthropic features through translation;
#: OpenAI-compatible servers reject unknown fields, so they are dropped on the way out.
_TOP_EXTENSIONS = ("thinking", "top_k")
_MESSAGE_EXTENSIONS = ("reasoning_content", "thinking_blocks", "is_error", "cache_control")


def strip_extensions(body: Json) -> Json:
    """A canonical body as an OpenAI-compatible server accepts it (a copy)."""
    out = {k: v for k, v in body.items() if k not in _TOP_EXTENSIONS}
    messages = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            messages.append(message)
            continue
        m = {k: v for k, v in message.items() if k not in _MESSAGE_EXTENSIONS}
        content = m.get("content")
        if isinstance(content, list):
            m["content"] = [_strip_part(p) for p in content]
        messages.append(m)
    out["messages"] = messages
    if isinstance(body.get("tools"), list):
        out["tools"] = [_strip_part(t) for t in body["tools"]]
    return out


def _strip_part(part: object) -> object:
    if isinstance(part, dict) and "cache_control" in part:
        return {k: v for k, v in part.items() if k != "cache_control"}
    return part
