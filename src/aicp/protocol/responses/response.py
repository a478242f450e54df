"""Replies: a canonical chat.completion -> a Responses `response` object; usage both ways.

The response echoes the request's settings (instructions, tools, text format,
...) as OpenAI's does, so a client that reads them back finds what it sent.
Usage keeps OpenAI's convention: `input_tokens` includes the cached tokens,
which `input_tokens_details.cached_tokens` reports again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aicp.protocol.jsonutil import Json
from aicp.providers.base import Usage, usage_from_openai

#: chat finish_reason -> the reason a response is incomplete.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_from_responses(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    return Usage(
        prompt_tokens=int(data.get("input_tokens") or 0),
        completion_tokens=int(data.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_creation_tokens=int(details.get("cache_write_tokens") or 0),
    )


def responses_usage(usage: Usage, reasoning_tokens: int = 0) -> Json:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def reasoning_tokens(usage: Any) -> int:
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    return int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0


def new_id(prefix: str, seed: Any = None) -> str:
    """`prefix_` and a unique suffix (or the upstream's id, when it has one)."""
    tail = str(seed) if isinstance(seed, str) and seed else uuid.uuid4().hex
    return tail if tail.startswith(prefix + "_") else f"{prefix}_{tail}"


def skeleton(ident: str, model: str, request: Json, created: int | None = None) -> Json:
    """A response object with no output yet (status in_progress), echoing the request."""
    reasoning = _object(request.get("reasoning"))
    text = _object(request.get("text"))
    return {
        "id": ident,
        "object": "response",
        "created_at": created if created is not None else int(time.time()),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,  # nothing is kept: a later previous_response_id cannot find it
        "temperature": request.get("temperature"),
        "text": {**text, "format": text.get("format") or {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation") or "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def finish(response: Json, finish_reason: str | None) -> Json:
    """Set the final status from chat's finish_reason (in place; returns the response)."""
    reason = _INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    return response


def message_item(ident: str, text: str, status: str = "completed") -> Json:
    return {
        "id": ident,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status == "completed" else [],
    }


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(ident: str, text: str) -> Json:
    content = [{"type": "reasoning_text", "text": text}] if text else []
    return {"id": ident, "type": "reasoning", "summary": [], "content": content}


def function_call_item(call_id: str, name: str, arguments: str, status: str) -> Json:
    return {
        "id": new_id("fc", call_id.removeprefix("call_")),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def completion_to_response(data: Json, model: str, request: Json) -> Json:
    """A canonical chat.completion (first choice) as a Responses `response` object."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    ident = new_id("resp", data.get("id"))
    output: list[Json] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(new_id("rs"), reasoning))
    content = _text_of(message.get("content"))
    refusal = message.get("refusal")
    if content or (isinstance(refusal, str) and refusal):
        item = message_item(new_id("msg"), content)
        if isinstance(refusal, str) and refusal:
            item["content"] = [{"type": "refusal", "refusal": refusal}]
        output.append(item)
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        output.append(
            function_call_item(
                str(call.get("id") or new_id("call")),
                str(fn.get("name") or ""),
                arguments if isinstance(arguments, str) else "{}",
                "completed",
            )
        )
    created = data.get("created")
    response = skeleton(ident, model or str(data.get("model") or ""), request, _int(created))
    response["output"] = output
    raw_usage = data.get("usage")
    response["usage"] = responses_usage(usage_from_openai(raw_usage), reasoning_tokens(raw_usage))
    return finish(response, choice.get("finish_reason"))


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""
