"""Canonical JSON (RFC 8785, JCS): the exact bytes a receipt's leaf hash covers.

Receipts are built from strings, integers, booleans, null, lists and objects
only (`plain` turns anything else into one of those), and for such values
orjson with sorted keys already writes JCS: no whitespace, keys in code-unit
order (our keys are ASCII), the same string escapes (\\b \\t \\n \\f \\r, other
controls as lower-case \\u00XX, everything else as UTF-8). That is ~20x faster
than a general JCS encoder on the request path. The verifiers use the
independent `rfc8785` package instead, so a writer that ever drifted from
the standard would fail verification rather than go unnoticed.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import rfc8785

#: JCS integers must survive an IEEE double (I-JSON, RFC 7493).
MAX_SAFE = 2**53 - 1


def canonical(value: Any) -> bytes:
    """JCS bytes of a value made only of str, int, bool, None, list and dict."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def reference(value: Any) -> bytes:
    """JCS bytes from the independent implementation (verification, tests)."""
    return rfc8785.dumps(value)


def plain(value: Any) -> Any:
    """`value` with every float made exact (an int when integral, else its shortest
    repr as a string) and every other scalar a JSON one, so `canonical` is JCS."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE <= value <= MAX_SAFE else str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) <= MAX_SAFE:
            return int(value)
        return repr(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)
