"""Server-sent events: an incremental decoder and the encoders we emit.

The decoder follows the WHATWG event-stream rules that matter for LLM APIs:
lines end in LF, CRLF or CR; `event:` names the event; several `data:` lines
join with LF; a blank line dispatches; comments (`:`) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    event: str | None
    data: str


class Decoder:
    """Feed bytes as they arrive; get complete events back."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[Event]:
        buf = self._buf + chunk
        if b"\r" in buf:
            # A lone CR at the very end may be the first half of CRLF: keep it.
            keep_cr = buf.endswith(b"\r")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        *lines, self._buf = buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            if not line:
                if self._data or self._event is not None:
                    yield Event(self._event, "\n".join(self._data))
                self._event, self._data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value

    def flush(self) -> Iterator[Event]:
        """Dispatch what is left when the stream ends without a blank line."""
        if self._buf:
            yield from self.feed(b"\n")
        if self._data:
            yield Event(self._event, "\n".join(self._data))
        self._event, self._data = None, []


def encode(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
