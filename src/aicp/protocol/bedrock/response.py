"""Converse response -> canonical `chat.completion`, and usage."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aicp.protocol.jsonutil import Json, dumps

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def converse_to_completion(resp: Json, model: str) -> Json:
    """A Converse response as a canonical `chat.completion`."""
    content = ((resp.get("output") or {}).get("message") or {}).get("content") or []
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[Json] = []
    tool_calls: list[Json] = []
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            tool_calls.append(_tool_call(block["toolUse"]))
        elif "reasoningContent" in block:
            _collect_reasoning(block["reasoningContent"], reasoning, thinking_blocks)
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    finish = FINISH_REASONS.get(str(resp.get("stopReason")), "stop")
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_dict(resp.get("usage")),
    }


def _tool_call(use: Json) -> Json:
    return {
        "id": use.get("toolUseId") or "",
        "type": "function",
        "function": {"name": use.get("name") or "", "arguments": _dump(use.get("input"))},
    }


def _dump(value: Any) -> str:
    return dumps(value if value is not None else {}).decode()


def _collect_reasoning(block: Json, texts: list[str], out: list[Json]) -> None:
    if "reasoningText" in block:
        rt = block["reasoningText"] or {}
        texts.append(rt.get("text") or "")
        out.append(
            {"type": "thinking", "thinking": rt.get("text") or "", "signature": rt.get("signature")}
        )
    elif "redactedContent" in block:
        out.append({"type": "redacted_thinking", "data": block["redactedContent"]})


def usage_dict(usage: Any) -> Json:
    """Bedrock TokenUsage as canonical usage.

    As in OpenAI's usage, prompt_tokens counts every input token, cache reads
    and writes included; Bedrock reports those apart from inputTokens.
    """
    u = usage if isinstance(usage, dict) else {}
    read = int(u.get("cacheReadInputTokens") or 0)
    write = int(u.get("cacheWriteInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + read + write
    completion = int(u.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_creation_input_tokens": write,
    }


def completion_id() -> str:
    # Converse answers carry no id of their own (only the x-amzn-RequestId header).
    return "chatcmpl-" + uuid.uuid4().hex[:24]
