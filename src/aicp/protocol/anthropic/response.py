"""Responses: Anthropic message <-> canonical OpenAI chat.completion; usage; stop reasons.

Usage differs in one way that matters for billing: OpenAI's `prompt_tokens`
includes cached tokens (reported again in `prompt_tokens_details`), while
Anthropic's `input_tokens` excludes both cache reads and cache writes.
"""

from __future__ import annotations

import time
from typing import Any

from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.providers.base import Usage, usage_from_openai

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop: str | None) -> str | None:
    """Anthropic stop_reason -> OpenAI finish_reason."""
    if stop is None:
        return None
    return _FINISH.get(stop, "stop")


def stop_reason(finish: str | None) -> str | None:
    """OpenAI finish_reason -> Anthropic stop_reason."""
    if finish is None:
        return None
    return _STOP.get(finish, "end_turn")


def usage_from_anthropic(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    read = int(data.get("cache_read_input_tokens") or 0)
    write = int(data.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(data.get("input_tokens") or 0) + read + write,
        completion_tokens=int(data.get("output_tokens") or 0),
        cached_tokens=read,
        cache_creation_tokens=write,
    )


def openai_usage(usage: Usage) -> Json:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "cache_creation_input_tokens": usage.cache_creation_tokens,
    }


def anthropic_usage(usage: Usage) -> Json:
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(0, uncached),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


# --- Anthropic -> OpenAI ------------------------------------------------------


def message_to_completion(msg: Json, model: str) -> Json:
    """An Anthropic message as an OpenAI chat.completion."""
    texts: list[str] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    for block in msg.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": arguments},
                }
            )
        elif kind == "thinking":
            entry: Json = {"type": "thinking", "thinking": block.get("thinking", "")}
            if "signature" in block:
                entry["signature"] = block["signature"]
            thinking.append(entry)
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data", "")})
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(t.get("thinking", "") for t in thinking)
        message["thinking_blocks"] = thinking
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(msg.get("stop_reason")) or "stop",
    }
    return {
        "id": str(msg.get("id") or "msg"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or msg.get("model", ""),
        "choices": [choice],
        "usage": openai_usage(usage_from_anthropic(msg.get("usage"))),
    }


# --- OpenAI -> Anthropic ------------------------------------------------------


def completion_to_message(data: Json, model: str) -> Json:
    """An OpenAI chat.completion (first choice) as an Anthropic message."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = _thinking_blocks(message)
    text = _text_of(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": _input_of(fn.get("arguments")),
            }
        )
    ident = str(data.get("id") or "")
    usage = usage_from_openai(data.get("usage"))
    return {
        "id": ident if ident.startswith("msg_") else "msg_" + ident,
        "type": "message",
        "role": "assistant",
        "model": model or data.get("model", ""),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")) or "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def _thinking_blocks(message: Json) -> list[Json]:
    blocks: list[Json] = []
    for tb in message.get("thinking_blocks") or []:
        if not isinstance(tb, dict):
            continue
        if tb.get("type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": tb.get("data", "")})
        else:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": tb.get("thinking", ""),
                    "signature": tb.get("signature", ""),
                }
            )
    reasoning = message.get("reasoning_content")
    if not blocks and isinstance(reasoning, str) and reasoning:
        # Reasoning from a non-Anthropic model has no signature to give.
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    return blocks


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _input_of(arguments: Any) -> Json:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = loads(arguments or "{}")
    except ValueError:
        # A model's malformed arguments are still worth showing to the client.
        return {"_raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"_value": value}
