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
