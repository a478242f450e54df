"""JSON helpers: orjson everywhere (measured in docs/decisions.md)."""

from __future__ import annotations

from typing import Any

import orjson

from aicp.errors import InvalidRequest

Json = dict[str, Any]

dumps = orjson.dumps
JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def tool_arguments(
    raw: Any, error: str, *, param: str | None = None, wrap: bool = True, detail: bool = False
) -> Json:
    """A canonical tool call's `arguments` (a JSON string, or already an object) as an object.

    Empty arguments are `{}`. Invalid JSON raises `InvalidRequest(error, param=param)`,
    followed by the parser's explanation when `detail` is set. A JSON value that is not
    an object becomes `{"value": ...}` when `wrap` is set, else raises the same error:
    Anthropic rejects such input, while Bedrock and Gemini accept any object.
    """
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{error}: {exc}" if detail else error, param=param) from None
    if isinstance(value, dict):
        return value
    if wrap:
        return {"value": value}
    raise InvalidRequest(error, param=param)
