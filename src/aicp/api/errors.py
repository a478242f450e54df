"""The one place that turns errors into HTTP bodies, in the client's own format."""

from __future__ import annotations

from aicp.errors import AicpError
from aicp.protocol.jsonutil import dumps
from aicp.providers.base import ANTHROPIC, RESPONSES

#: Anthropic's error `type`s (docs "Errors"); OpenAI uses our `kind` as `type`.
_ANTHROPIC_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_payload(err: AicpError, protocol: str) -> dict[str, object]:
    if protocol == ANTHROPIC:
        fallback = "invalid_request_error" if 400 <= err.status < 500 else "api_error"
        kind = _ANTHROPIC_TYPE.get(err.status, fallback)
        return {"type": "error", "error": {"type": kind, "message": err.message}}
    return {
        "error": {
            "message": err.message,
            "type": err.kind,
            "param": err.param,
            "code": err.code,
        }
    }


def error_body(err: AicpError, protocol: str) -> bytes:
    return dumps(error_payload(err, protocol))


def stream_error_event(err: AicpError, protocol: str, sequence_number: int = 0) -> bytes:
    """The last event of a stream that failed after it started.

    A Responses stream ends with an `error` event numbered after the last event sent.
    """
    if protocol == RESPONSES:
        event = {
            "type": "error",
            "code": err.code or err.kind,
            "message": err.message,
            "param": err.param,
            "sequence_number": sequence_number,
        }
        return b"event: error\ndata: " + dumps(event) + b"\n\n"
    body = error_body(err, protocol)
    if protocol == ANTHROPIC:
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
