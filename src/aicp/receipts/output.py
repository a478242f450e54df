"""The text a stored response body says: what `aicp replay` compares.

A body is an OpenAI chat completion, a Responses API response, an Anthropic
message, an embeddings list, a token count or an error, as JSON or as the SSE
stream of one of them. Each shape has a reader; the first that recognises the
data wins. Tool calls read as `[tool name(arguments)]`, so a change of tool or
arguments shows up in the text too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

Reader = Callable[[dict[str, Any]], str | None]


def output_text(body: bytes | None) -> str | None:
    """The body's text; None when there is no body or nothing readable in it."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    try:
        if data is None:
            return _stream_text(body)
        return _read(data) if isinstance(data, dict) else None
    except (AttributeError, TypeError, KeyError, IndexError):
        # A stored body of a shape the readers do not know: nothing to show, not a 500.
        return None


def _read(data: dict[str, Any]) -> str | None:
    for reader in _READERS:
        text = reader(data)
        if text is not None:
            return text
    return None


def _error(data: dict[str, Any]) -> str | None:
    err = data.get("error")
    if isinstance(err, dict):  # OpenAI and Anthropic error bodies
        return f"error: {err.get('message')}"
    if data.get("type") == "error" and "message" in data:  # a Responses stream's error event
        return f"error: {data['message']}"
    return None


def _chat(data: dict[str, Any]) -> str | None:
    choices = data.get("choices")
    if not isinstance(choices, list):
        return None
    parts: list[str] = []
    for choice in choices:
        message = choice.get("message") or choice.get("delta") or {}
        parts.append(message.get("content") or "")
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            parts.append(_tool(fn.get("name"), fn.get("arguments")))
    return "".join(parts)


def _message(data: dict[str, Any]) -> str | None:
    if data.get("type") != "message" or not isinstance(data.get("content"), list):
        return None
    return "".join(_block(block) for block in data["content"])


def _block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind in ("text", "output_text"):
        return str(block.get("text") or "")
    if kind in ("tool_use", "function_call"):
        args = block.get("input", block.get("arguments"))
        return _tool(block.get("name"), args)
    return ""


def _response(data: dict[str, Any]) -> str | None:
    if data.get("object") != "response" or not isinstance(data.get("output"), list):
        return None
    parts: list[str] = []
    for item in data["output"]:
        if item.get("type") == "message":
            parts.extend(_block(block) for block in item.get("content") or [])
        else:
            parts.append(_block(item))
    return "".join(parts)


def _embeddings(data: dict[str, Any]) -> str | None:
    items = data.get("data")
    if data.get("object") != "list" or not isinstance(items, list):
        return None
    dims = {len(i.get("embedding") or ()) for i in items if isinstance(i, dict)}
    return f"<{len(items)} embeddings of {', '.join(map(str, sorted(dims))) or 0} dimensions>"


def _count(data: dict[str, Any]) -> str | None:
    n = data.get("input_tokens")
    return None if not isinstance(n, int) or len(data) != 1 else f"input_tokens: {n}"


_READERS: tuple[Reader, ...] = (_error, _chat, _message, _response, _embeddings, _count)


def _tool(name: object, arguments: object) -> str:
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return f"[tool {name}({arguments})]"


# --- streams ------------------------------------------------------------------------


def _events(body: bytes) -> Iterator[dict[str, Any]]:
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = orjson.loads(line[5:].strip())
        except orjson.JSONDecodeError:
            continue  # [DONE], or a body redacted to lengths
        if isinstance(event, dict):
            yield event


def _stream_text(body: bytes) -> str | None:
    text: list[str] = []
    #: (protocol, index) -> [name, arguments so far], in the order the calls began.
    tools: dict[tuple[str, int], list[str]] = {}
    seen = False
    for event in _events(body):
        seen = True
        _stream_event(event, text, tools)
    if not seen:
        return None
    return "".join(text) + "".join(_tool(name, args) for name, args in tools.values())


def _stream_event(
    event: dict[str, Any], text: list[str], tools: dict[tuple[str, int], list[str]]
) -> None:
    kind = event.get("type")
    if kind == "content_block_start":  # Anthropic
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            tools[("a", event.get("index", 0))] = [str(block.get("name")), ""]
    elif kind == "content_block_delta":
        delta = event.get("delta") or {}
        if "partial_json" in delta:
            tools.setdefault(("a", event.get("index", 0)), ["?", ""])[1] += delta["partial_json"]
        else:
            text.append(str(delta.get("text") or ""))
    elif kind == "response.output_text.delta":  # Responses
        text.append(str(event.get("delta") or ""))
    elif kind == "response.output_item.added":
        item = event.get("item") or {}
        if item.get("type") == "function_call":
            tools[("r", event.get("output_index", 0))] = [str(item.get("name")), ""]
    elif kind == "response.function_call_arguments.delta":
        key = ("r", event.get("output_index", 0))
        tools.setdefault(key, ["?", ""])[1] += str(event.get("delta") or "")
    elif "choices" in event:  # OpenAI chat chunks
        _chunk(event, text, tools)
    elif kind in ("error", None):
        error = _error(event)
        if error is not None:
            text.append(("\n" if text else "") + error)


def _chunk(event: dict[str, Any], text: list[str], tools: dict[tuple[str, int], list[str]]) -> None:
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        text.append(delta.get("content") or "")
        for call in delta.get("tool_calls") or []:
            fn = call.get("function") or {}
            entry = tools.setdefault(("o", call.get("index", 0)), [str(fn.get("name")), ""])
            entry[1] += fn.get("arguments") or ""
