"""JSON helpers: orjson everywhere (measured in docs/decisions.md)."""

from __future__ import annotations

from typing import Any

import orjson

Json = dict[str, Any]

dumps = orjson.dumps
JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
