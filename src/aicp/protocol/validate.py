"""Checks on incoming bodies: the fields we rely on, with messages that say what is wrong.

Deliberately hand-written: it runs on every request and must stay in the
microseconds. Fields we do not know pass through untouched.
"""

from __future__ import annotations

from typing import Any

from aicp.errors import InvalidRequest
from aicp.protocol.jsonutil import Json, loads

_OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_ANTHROPIC_ROLES = frozenset({"user", "assistant"})


def parse_json(raw: bytes) -> Json:
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        body = loads(raw)
    except ValueError as exc:
        if _bad_utf8(raw):
            raise InvalidRequest("the request body is not valid UTF-8") from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _bad_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _need(body: Json, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in body:
        raise InvalidRequest(f"'{key}' is a required property", param=key)
    return _typed(body, key, kind, what)


def _opt(body: Json, key: str, kind: type | tuple[type, ...], what: str) -> None:
    if body.get(key) is not None:
        _typed(body, key, kind, what)


def _typed(body: Json, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body[key]
    # bool is an int subclass, but `true` is not a number the APIs accept.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise InvalidRequest(f"'{key}' must be {what}, not {_name(value)}", param=key)
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _model(body: Json) -> None:
    model = _need(body, "model", str, "a string")
    if not model.strip():
        raise InvalidRequest("'model' must not be empty", param="model")


def chat(body: Json) -> None:
    """OpenAI chat completions."""
    _model(body)
    messages = _need(body, "messages", list, "an array")
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = m.get("role")
        if role not in _OPENAI_ROLES:
            raise InvalidRequest(
                f"messages[{i}].role must be one of {', '.join(sorted(_OPENAI_ROLES))}",
                param=f"messages[{i}].role",
            )
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(
                f"messages[{i}].content must be a string or an array of parts",
                param=f"messages[{i}].content",
            )
    _opt(body, "stream", bool, "a boolean")
    _opt(body, "n", int, "an integer")
    _opt(body, "max_tokens", int, "an integer")
    _opt(body, "max_completion_tokens", int, "an integer")
    _opt(body, "temperature", (int, float), "a number")
    _opt(body, "top_p", (int, float), "a number")
    _opt(body, "seed", int, "an integer")
    _opt(body, "tools", list, "an array")
    _opt(body, "stop", (str, list), "a string or an array of strings")
    _opt(body, "response_format", dict, "an object")
    _opt(body, "stream_options", dict, "an object")
    _opt(body, "metadata", dict, "an object")
    _opt(body, "user", str, "a string")
    _opt(body, "tool_choice", (str, dict), "a string or an object")
    _tools(body.get("tools"), body.get("tool_choice"))
    for key in ("n", "max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value < 1:
            raise InvalidRequest(f"'{key}' must be at least 1", param=key)


def _tools(tools: Any, choice: Any) -> None:
    # The mock and the translating providers read these shapes; a wrong one must be a 400.
    for i, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools[{i}] must be an object", param=f"tools[{i}]")
        if not isinstance(tool.get("function", {}), dict):
            raise InvalidRequest(
                f"tools[{i}].function must be an object", param=f"tools[{i}].function"
            )
    if isinstance(choice, dict) and not isinstance(choice.get("function", {}), dict):
        raise InvalidRequest("tool_choice.function must be an object", param="tool_choice.function")


def messages(body: Json) -> None:
    """Anthropic messages."""
    _model(body)
    max_tokens = _need(body, "max_tokens", int, "an integer")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: must be at least 1", param="max_tokens")
    _anthropic_messages(body)
    _opt(body, "stream", bool, "a boolean")
    _opt(body, "temperature", (int, float), "a number")
    _opt(body, "stop_sequences", list, "an array of strings")


def count_tokens(body: Json) -> None:
    """Anthropic messages/count_tokens (the messages body without max_tokens)."""
    _model(body)
    _anthropic_messages(body)


def _anthropic_messages(body: Json) -> None:
    """The fields `messages` and `count_tokens` share, after the model."""
    msgs = _need(body, "messages", list, "an array")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in _ANTHROPIC_ROLES:
            raise InvalidRequest(
                f"messages.{i}.role: must be 'user' or 'assistant'", param=f"messages.{i}.role"
            )
        if not isinstance(m.get("content"), str | list):
            raise InvalidRequest(
                f"messages.{i}.content: must be a string or an array of content blocks",
                param=f"messages.{i}.content",
            )
    _opt(body, "system", (str, list), "a string or an array of text blocks")
    _opt(body, "tools", list, "an array")


_RESPONSES_ROLES = frozenset({"user", "assistant", "system", "developer"})
#: Responses fields that stand in for `input` (a stored prompt or conversation at OpenAI).
_INPUT_SOURCES = ("input", "previous_response_id", "conversation", "prompt")


def responses(body: Json) -> None:
    """OpenAI Responses API."""
    _model(body)
    if all(body.get(key) is None for key in _INPUT_SOURCES):
        raise InvalidRequest("'input' is a required property", param="input")
    _opt(body, "input", (str, list), "a string or an array of input items")
    items = body.get("input")
    for i, item in enumerate(items if isinstance(items, list) else ()):
        _input_item(i, item)
    _opt(body, "instructions", str, "a string")
    _opt(body, "stream", bool, "a boolean")
    _opt(body, "max_output_tokens", int, "an integer")
    _opt(body, "temperature", (int, float), "a number")
    _opt(body, "top_p", (int, float), "a number")
    _opt(body, "tools", list, "an array")
    _opt(body, "tool_choice", (str, dict), "a string or an object")
    _opt(body, "text", dict, "an object")
    _opt(body, "reasoning", dict, "an object")
    _opt(body, "metadata", dict, "an object")
    _opt(body, "parallel_tool_calls", bool, "a boolean")
    _opt(body, "user", str, "a string")
    for i, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"tools[{i}] must be an object with a 'type'", param=f"tools[{i}]")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise InvalidRequest(
                f"tools[{i}].name is required for a function tool", param=f"tools[{i}].name"
            )
    value = body.get("max_output_tokens")
    if isinstance(value, int) and value < 1:
        raise InvalidRequest("'max_output_tokens' must be at least 1", param="max_output_tokens")


def _input_item(i: int, item: Any) -> None:
    if not isinstance(item, dict):
        raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
    if item.get("type", "message") != "message":
        return  # function calls, their outputs, reasoning: checked where they are translated
    if item.get("role") not in _RESPONSES_ROLES:
        raise InvalidRequest(
            f"input[{i}].role must be one of {', '.join(sorted(_RESPONSES_ROLES))}",
            param=f"input[{i}].role",
        )
    if not isinstance(item.get("content"), str | list):
        raise InvalidRequest(
            f"input[{i}].content must be a string or an array of content parts",
            param=f"input[{i}].content",
        )


def embeddings(body: Json) -> None:
    _model(body)
    value = _need(body, "input", (str, list), "a string or an array")
    if isinstance(value, list) and not value:
        raise InvalidRequest("'input' must not be empty", param="input")
