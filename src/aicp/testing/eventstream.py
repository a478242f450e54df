"""An encoder for AWS event-stream messages (`application/vnd.amazon.eventstream`).

The fake upstream needs to speak the framing without botocore, which is an
optional extra. A message is a 12-byte prelude (total length, headers length,
CRC32 of those 8 bytes), typed headers, the payload, and a CRC32 of all that
precedes it; all integers are big-endian. Only the header types Bedrock uses
are written: strings (7). Decoding is botocore's job (see providers.bedrock).
"""

from __future__ import annotations

import struct
import zlib

from aicp.protocol.jsonutil import Json, dumps

_STRING = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        raw_value = value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: Json) -> bytes:
    """An `:message-type: event` message as ConverseStream sends it."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, dumps(payload))


def exception(exception_type: str, message: str) -> bytes:
    """An `:message-type: exception` message (throttlingException, ...)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, dumps({"message": message}))
