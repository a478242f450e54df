"""ConverseStream events -> canonical `chat.completion.chunk` dicts."""

from __future__ import annotations

import time

from aicp.errors import UpstreamStatusError, UpstreamUnavailable
from aicp.protocol.bedrock.response import FINISH_REASONS, completion_id, usage_dict
from aicp.protocol.jsonutil import Json, loads
from aicp.providers.base import Usage

#: ConverseStream exception events and the HTTP status each stands for (API reference).
STREAM_EXCEPTIONS = {
    "validationException": 400,
    "modelStreamErrorException": 424,
    "throttlingException": 429,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}


def stream_exception(kind: str, payload: bytes) -> UpstreamStatusError:
    """An exception event of a ConverseStream as the error it stands for."""
    message = kind
    try:
        data = loads(payload) if payload else {}
    except ValueError:
        data = {}
    if isinstance(data, dict) and (data.get("message") or data.get("Message")):
        message = f"{kind}: {data.get('message') or data.get('Message')}"
    status = STREAM_EXCEPTIONS.get(kind, 502)
    return UpstreamStatusError(f"Bedrock stream error: {message}", status=status, body=payload)


class StreamTranslator:
    """ConverseStream events -> canonical `chat.completion.chunk` dicts."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self.id = completion_id()
        self.created = int(time.time())
        self.finished = False
        self.ended = False
        #: contentBlockIndex of a toolUse block -> its index among tool_calls
        self._tools: dict[int, int] = {}

    def feed(self, event: str, payload: Json) -> list[Json]:
        handler = getattr(self, "_on_" + event, None)
        if handler is None:
            return []  # events we do not translate (and ones added later)
        chunks: list[Json] = handler(payload)
        return chunks

    def close(self) -> list[Json]:
        if not self.finished:
            # A clean end without messageStop is a cut, not an answer.
            raise UpstreamUnavailable("the Bedrock stream ended before its messageStop event")
        return []

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _on_messageStart(self, payload: Json) -> list[Json]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_contentBlockStart(self, payload: Json) -> list[Json]:
        use = (payload.get("start") or {}).get("toolUse")
        if not use:
            return []
        index = len(self._tools)
        self._tools[int(payload.get("contentBlockIndex") or 0)] = index
        call = {
            "index": index,
            "id": use.get("toolUseId") or "",
            "type": "function",
            "function": {"name": use.get("name") or "", "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_contentBlockDelta(self, payload: Json) -> list[Json]:
        delta = payload.get("delta") or {}
        if "text" in delta:
            return [self._chunk({"content": delta["text"]})]
        if "toolUse" in delta:
            index = self._tools.get(int(payload.get("contentBlockIndex") or 0), 0)
            part = (delta["toolUse"] or {}).get("input") or ""
            return [
                self._chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            ]
        return self._reasoning(delta.get("reasoningContent") or {})

    def _reasoning(self, delta: Json) -> list[Json]:
        if delta.get("text"):
            return [self._chunk({"reasoning_content": delta["text"]})]
        # The signature closes a thinking block; Claude needs it to accept the block
        # back in a later turn, so it travels as a canonical thinking block.
        if delta.get("signature"):
            block = {"type": "thinking", "thinking": "", "signature": delta["signature"]}
            return [self._chunk({"thinking_blocks": [block]})]
        if delta.get("redactedContent"):
            block = {"type": "redacted_thinking", "data": delta["redactedContent"]}
            return [self._chunk({"thinking_blocks": [block]})]
        return []

    def _on_messageStop(self, payload: Json) -> list[Json]:
        self.finished = True
        finish = FINISH_REASONS.get(str(payload.get("stopReason")), "stop")
        return [self._chunk({}, finish)]

    def _on_metadata(self, payload: Json) -> list[Json]:
        self.ended = True
        usage = usage_dict(payload.get("usage"))
        details = usage["prompt_tokens_details"]
        self.usage = Usage(
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cached_tokens=details["cached_tokens"],
            cache_creation_tokens=usage["cache_creation_input_tokens"],
        )
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage
        return [chunk]
