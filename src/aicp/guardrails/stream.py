"""Output guarding of a stream: the text deltas of each event go through a `TextPipe`
(redact, then restore placeholders), the events around them are left as they are.

Items are canonical OpenAI chunk dicts (a translated stream) or the upstream's
own SSE bytes in the client's protocol (pass-through), which are split into
events here; an event whose text did not change goes out byte for byte. What
the pipe holds back (a span that may continue in the next delta) is released
with the next delta, and the rest before the event that ends the text:
OpenAI's chunk with a `finish_reason`, Anthropic's `content_block_stop`, the
Responses API's `response.output_text.done` (whose full text is changed too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

import orjson

from aicp.guardrails.redact import StreamRedactor, StreamRestorer, _Span
from aicp.protocol.jsonutil import Json

#: A word (or an open PEM block) held back longer than this is released anyway.
MAX_HELD = 8192


class EagerRedactor(StreamRedactor):
    """A `StreamRedactor` that keeps a stream's pace: everything up to the last whitespace
    goes out at once; only a word still arriving (a key may be half-way through) or an
    open `-----BEGIN` block is held. For secrets, which are single words but for PEM
    blocks; PII (a phone number with spaces, an address) needs the windowed redactor."""

    def feed(self, piece: str) -> str:
        self._pending += piece
        return self._release(final=False)

    def _cut(self, text: str, done: int, spans: Sequence[_Span]) -> int:
        cut = len(text)
        # A key is ASCII: whitespace or any other character ends one (Chinese or Japanese
        # text has no spaces, and must not wait for one).
        while cut > done and not _ends_word(text[cut - 1]):
            cut -= 1
        begin = text.rfind("-----BEGIN", done)
        if begin >= 0 and text.find("-----END", begin) < 0:
            cut = min(cut, begin)
        if cut <= done and len(text) - done > MAX_HELD:
            cut = len(text) - self.window
        for span in reversed(spans):
            if span.start < cut < span.end:
                cut = span.start
        return cut


def _ends_word(char: str) -> bool:
    return char.isspace() or not char.isascii()


class TextPipe:
    def __init__(self, redactor: StreamRedactor | None, restorer: StreamRestorer | None) -> None:
        self.redactor = redactor
        self.restorer = restorer

    def feed(self, text: str) -> str:
        if self.redactor is not None:
            text = self.redactor.feed(text)
        if self.restorer is not None and text:
            text = self.restorer.feed(text)
        return text

    def flush(self) -> str:
        text = ""
        if self.redactor is not None:
            text = self.redactor.flush()
        if self.restorer is not None:
            text = (
                self.restorer.feed(text) + self.restorer.flush() if text else self.restorer.flush()
            )
        return text

    def whole(self, text: str) -> str:
        """A complete text (a `done` event's), through fresh copies of the same steps."""
        redactor = self.redactor
        restorer = self.restorer
        if redactor is not None:
            fresh = type(redactor)(redactor.detectors, redactor.placeholders, redactor.window)
            text = fresh.feed(text) + fresh.flush()
        if restorer is not None:
            again = StreamRestorer(restorer.placeholders)
            text = again.feed(text) + again.flush()
        return text


class Pipes:
    """One `TextPipe` per text being streamed (a choice, a content block, an output part):
    with `n > 1` or several blocks, their deltas interleave."""

    def __init__(
        self, make: Callable[[], TextPipe], make_args: Callable[[], TextPipe] | None = None
    ) -> None:
        self.make = make
        self.make_args = make_args
        self._by_key: dict[Any, TextPipe] = {}
        self._args: dict[Any, TextPipe] = {}

    def args(self, key: Any) -> TextPipe | None:
        """The pipe of one tool call's arguments (placeholders restored, JSON-escaped), or
        None when arguments pass unchanged."""
        if self.make_args is None:
            return None
        pipe = self._args.get(key)
        if pipe is None:
            pipe = self._args[key] = self.make_args()
        return pipe

    def flush_args(self, match: Callable[[Any], bool]) -> list[tuple[Any, str]]:
        """The held tails of the argument pipes whose key `match`es, those pipes done."""
        out = []
        for key in [k for k in self._args if match(k)]:
            tail = self._args.pop(key).flush()
            if tail:
                out.append((key, tail))
        return out

    def __call__(self, key: Any) -> TextPipe:
        pipe = self._by_key.get(key)
        if pipe is None:
            pipe = self._by_key[key] = self.make()
        return pipe

    def drain(self) -> list[tuple[Any, str]]:
        """What every pipe still holds, for a stream that ends without closing its texts."""
        out = [(key, pipe.flush()) for key, pipe in self._by_key.items()]
        return [(key, tail) for key, tail in out if tail]


async def rewrite_stream(
    items: AsyncIterator[bytes | Json],
    protocol: str,
    make_pipe: Callable[[], TextPipe],
    make_args: Callable[[], TextPipe] | None = None,
) -> AsyncIterator[bytes | Json]:
    pipe = Pipes(make_pipe, make_args)
    if protocol == "canonical":
        async for item in items:
            if isinstance(item, dict):
                _openai_chunk(item, pipe)
            yield item
        for index, tail in pipe.drain():
            yield {"choices": [{"index": index, "delta": {"content": tail}, "finish_reason": None}]}
        return
    buffer = b""
    async for item in items:
        if not isinstance(item, bytes):
            yield item
            continue
        buffer += item
        out: list[bytes] = []
        while True:
            cut, sep = _boundary(buffer)
            if cut < 0:
                break
            event, buffer = buffer[:cut], buffer[cut + sep :]
            out.append(_event(event, protocol, pipe) + b"\n\n")
        if out:
            yield b"".join(out)
    if buffer:
        yield _event(buffer, protocol, pipe)


def _boundary(data: bytes) -> tuple[int, int]:
    lf = data.find(b"\n\n")
    crlf = data.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return lf, 2


def _event(event: bytes, protocol: str, pipe: Pipes) -> bytes:
    """One SSE event (without its blank line), its text changed by `pipe` if it has any."""
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        stripped = line.rstrip(b"\r")
        if not stripped.startswith(b"data:"):
            continue
        payload = stripped[5:].strip()
        if payload == b"[DONE]":
            return _drained(pipe, protocol) + event
        if not payload.startswith(b"{"):
            continue
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(data, dict):
            return event
        extra = b""
        changed = False
        if data.get("type") in _TERMINAL:
            extra = _drained(pipe, protocol)
        elif protocol == "anthropic":
            changed, extra = _anthropic(data, pipe)
        elif protocol == "openai-responses":
            changed, extra = _responses(data, pipe)
        else:
            changed = _openai_chunk(data, pipe)
        if changed:
            lines[i] = b"data: " + orjson.dumps(data)
        return extra + b"\n".join(lines)
    return event


#: Events after which no text comes: what a pipe still holds goes out before them.
_TERMINAL = frozenset({"message_stop", "response.completed", "response.incomplete"})


def _drained(pipes: Pipes, protocol: str) -> bytes:
    out = b""
    for key, tail in pipes.drain():
        if protocol == "anthropic":
            out += _anthropic_delta(key, tail)
        elif protocol == "openai-responses":
            output_index, content_index = key
            fields = {"output_index": output_index, "content_index": content_index}
            out += _responses_delta(fields, tail)
        else:
            chunk = {
                "object": "chat.completion.chunk",
                "choices": [{"index": key, "delta": {"content": tail}, "finish_reason": None}],
            }
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
    return out


def _openai_chunk(chunk: dict[str, Any], pipes: Pipes) -> bool:
    changed = False
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            if not choice.get("finish_reason"):
                continue
            delta = choice["delta"] = {}  # a finish without a delta still releases the tail
        index = choice.get("index", 0)
        pipe = pipes(index)
        text = delta.get("content")
        new = pipe.feed(text) if isinstance(text, str) else text
        if pipes.make_args is not None:
            changed = _openai_arguments(delta, index, pipes) or changed
        if choice.get("finish_reason"):
            tail = pipe.flush()
            if tail:
                new = (new or "") + tail
            tails = pipes.flush_args(partial(_of_choice, index))
            if tails:
                calls = delta.setdefault("tool_calls", [])
                calls.extend({"index": k[1], "function": {"arguments": t}} for k, t in tails)
                changed = True
        if new != text:
            delta["content"] = new
            changed = True
    return changed


def _of_choice(index: Any, key: Any) -> bool:
    return bool(key[0] == index)


def _openai_arguments(delta: dict[str, Any], index: Any, pipes: Pipes) -> bool:
    changed = False
    for call in delta.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            args = pipes.args((index, call.get("index", 0)))
            if args is not None:
                changed = _feed(fn, "arguments", args) or changed
    return changed


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _anthropic(data: dict[str, Any], pipes: Pipes) -> tuple[bool, bytes]:
    kind = data.get("type")
    index = data.get("index", 0)
    if kind == "content_block_delta":
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            return _feed(delta, "text", pipes(index)), b""
        if isinstance(delta, dict) and delta.get("type") == "input_json_delta":
            args = pipes.args(index)
            return (False if args is None else _feed(delta, "partial_json", args)), b""
    elif kind == "content_block_stop":
        tail = pipes(index).flush()
        extra = _anthropic_delta(index, tail) if tail else b""
        for _, rest in pipes.flush_args(lambda key: key == index):
            delta = {"type": "input_json_delta", "partial_json": rest}
            data = {"type": "content_block_delta", "index": index, "delta": delta}
            extra += _sse("content_block_delta", data)
        return False, extra
    return False, b""


def _feed(container: dict[str, Any], key: str, pipe: TextPipe) -> bool:
    """`container[key]` through `pipe`; whether it changed."""
    text = container.get(key)
    if not isinstance(text, str):
        return False
    new = pipe.feed(text)
    if new == text:
        return False
    container[key] = new
    return True


def _anthropic_delta(index: Any, text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return _sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _responses_delta(fields: dict[str, Any], text: str) -> bytes:
    data = {"type": "response.output_text.delta", **fields, "delta": text}
    return _sse("response.output_text.delta", data)


def _responses(data: dict[str, Any], pipes: Pipes) -> tuple[bool, bytes]:
    kind = data.get("type")
    pipe = pipes((data.get("output_index", 0), data.get("content_index", 0)))
    if kind == "response.output_text.delta":
        return _feed(data, "delta", pipe), b""
    elif kind == "response.output_text.done":
        tail = pipe.flush()
        extra = b""
        if tail:
            keys: tuple[str, ...] = ("item_id", "output_index", "content_index")
            extra = _responses_delta({k: data[k] for k in keys if k in data}, tail)
        text = data.get("text")
        if isinstance(text, str):
            data["text"] = pipe.whole(text)
            return True, extra
        return False, extra
    elif kind == "response.function_call_arguments.delta":
        args = pipes.args(data.get("output_index", 0))
        return (False if args is None else _feed(data, "delta", args)), b""
    elif kind == "response.function_call_arguments.done":
        out = data.get("output_index", 0)
        extra = b""
        for _, rest in pipes.flush_args(lambda key: key == out):
            added: dict[str, Any] = {"type": "response.function_call_arguments.delta"}
            added.update({k: data[k] for k in ("item_id", "output_index") if k in data})
            added["delta"] = rest
            extra += _sse("response.function_call_arguments.delta", added)
        return _whole_arguments(data, pipes), extra
    elif kind in ("response.content_part.done", "response.output_item.done", "response.completed"):
        changed = _responses_whole(data, pipe)
        return _whole_arguments(data, pipes) or changed, b""
    return False, b""


def _responses_whole(data: Any, pipe: TextPipe) -> bool:
    """Full texts repeated in Responses' closing events (`text` of output_text parts)."""
    changed = False
    if isinstance(data, dict):
        if data.get("type") == "output_text" and isinstance(data.get("text"), str):
            new = pipe.whole(data["text"])
            if new != data["text"]:
                data["text"] = new
                changed = True
        for value in data.values():
            if isinstance(value, dict | list):
                changed = _responses_whole(value, pipe) or changed
    elif isinstance(data, list):
        for value in data:
            changed = _responses_whole(value, pipe) or changed
    return changed


def _whole_arguments(data: Any, pipes: Pipes) -> bool:
    """Complete tool-call arguments repeated in Responses' closing events, restored."""
    if pipes.make_args is None:
        return False
    changed = False
    if isinstance(data, dict):
        if data.get("type") in ("function_call", "response.function_call_arguments.done"):
            key = "arguments"
            if isinstance(data.get(key), str):
                fresh = pipes.make_args()
                new = fresh.feed(data[key]) + fresh.flush()
                if new != data[key]:
                    data[key] = new
                    changed = True
        for value in data.values():
            if isinstance(value, dict | list):
                changed = _whole_arguments(value, pipes) or changed
    elif isinstance(data, list):
        for value in data:
            changed = _whole_arguments(value, pipes) or changed
    return changed
