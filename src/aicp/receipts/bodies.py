"""What `receipts.bodies: redacted` keeps of a body: its shape, not its text.

JSON keeps its structure, numbers, booleans and the fields that describe
rather than carry content (model, role, type, ids, finish reasons); every
other string becomes `<N chars>`. An SSE stream is redacted event by event.
Anything that is not JSON is replaced by its length.
"""

from __future__ import annotations

from typing import Any

import orjson

#: String fields kept as they are: metadata, not what users wrote or models said.
KEEP = frozenset(
    {
        "model",
        "role",
        "type",
        "id",
        "object",
        "finish_reason",
        "stop_reason",
        "stop_sequence",
        "event",
        "tool_choice",
        "name",
        "status",
    }
)


def redact(body: bytes | None) -> bytes | None:
    if body is None:
        return None
    try:
        return orjson.dumps(_walk(orjson.loads(body), None))
    except orjson.JSONDecodeError:
        pass
    if b"\ndata:" in body or body.startswith((b"data:", b"event:")):
        return _redact_sse(body)
    return f"<{len(body)} bytes>".encode()


def _walk(value: Any, key: str | None) -> Any:
    if isinstance(value, str):
        return value if key in KEEP else f"<{len(value)} chars>"
    if isinstance(value, dict):
        return {k: _walk(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, key) for v in value]
    return value


def _redact_sse(body: bytes) -> bytes:
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            try:
                line = b"data: " + orjson.dumps(_walk(orjson.loads(payload), None))
            except orjson.JSONDecodeError:
                line = b"data: " + (payload if payload == b"[DONE]" else b"<redacted>")
        out.append(line)
    return b"\n".join(out)
