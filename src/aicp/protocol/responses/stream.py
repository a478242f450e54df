"""Streams: canonical chat.completion.chunk dicts -> Responses API server-sent events.

A Responses stream is `response.created`, `response.in_progress`, then per
output item `response.output_item.added`, its content events and
`response.output_item.done`, then `response.completed` (or
`response.incomplete`) carrying the whole response with usage. Every event
has a `sequence_number`. A message's text is one `output_text` part
(`content_part.added`, `output_text.delta`s, `output_text.done`,
`content_part.done`); a function call streams its arguments
(`function_call_arguments.delta`, `.done`). Text and reasoning items close
when another kind of output starts; function calls stay open until the
finish reason, since chat may stream several side by side. The final event
waits for `close()`, because usage comes after the finish reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aicp.protocol import sse
from aicp.protocol.jsonutil import Json, dumps
from aicp.protocol.responses.response import (
    finish,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    reasoning_tokens,
    responses_usage,
    skeleton,
    text_part,
)
from aicp.protocol.tokens import estimate_request_tokens
from aicp.providers.base import Usage, usage_from_openai


@dataclass(slots=True)
class _Item:
    kind: str  # "message" | "reasoning" | "function_call"
    index: int  # output_index
    item: Json
    parts: list[str] = field(default_factory=list)
    done: bool = False


class StreamEncoder:
    """Canonical OpenAI chunks -> Responses SSE bytes for one response."""

    def __init__(self, request: Json) -> None:
        self.request = request
        self.model = str(request.get("model") or "")
        #: The next event's number; an error event that ends the stream continues it.
        self.sequence_number = 0
        self._response: Json | None = None
        self._items: list[_Item] = []
        self._open: _Item | None = None  # the text or reasoning item being streamed
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> its item
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._reasoning_tokens = 0
        self._chars = 0  # streamed characters, for an estimate when usage never comes

    def feed(self, chunk: Json) -> bytes:
        out: list[bytes] = []
        if self._response is None:
            self._start(chunk, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage_from_openai(usage)
            self._reasoning_tokens = reasoning_tokens(usage)
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # a response has one choice
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._close_all(out)
        return b"".join(out)

    def close(self) -> bytes:
        out: list[bytes] = []
        if self._response is None:
            self._start({}, out)
        self._close_all(out)
        assert self._response is not None
        response = self._response
        response["output"] = [i.item for i in self._items]
        usage = self._usage
        if usage is None:
            usage = Usage(estimate_request_tokens(self.request), (self._chars + 3) // 4)
        response["usage"] = responses_usage(usage, self._reasoning_tokens)
        finish(response, self._finish)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._emit(out, {"type": kind, "response": response})
        return b"".join(out)

    # --- pieces ---------------------------------------------------------------

    def _emit(self, out: list[bytes], payload: Json) -> None:
        payload["sequence_number"] = self.sequence_number
        self.sequence_number += 1
        out.append(sse.encode(dumps(payload), str(payload["type"])))

    def _start(self, chunk: Json, out: list[bytes]) -> None:
        ident = new_id("resp", chunk.get("id"))
        self._response = skeleton(ident, self.model, self.request)
        self._emit(out, {"type": "response.created", "response": self._response})
        self._emit(out, {"type": "response.in_progress", "response": self._response})

    def _delta(self, delta: Json, out: list[bytes]) -> None:
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self._text("reasoning", reasoning, out)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text("message", content, out)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                self._tool_call(call, out)

    def _add(self, kind: str, item: Json, out: list[bytes]) -> _Item:
        entry = _Item(kind, len(self._items), item)
        self._items.append(entry)
        self._emit(
            out, {"type": "response.output_item.added", "output_index": entry.index, "item": item}
        )
        return entry

    def _text(self, kind: str, text: str, out: list[bytes]) -> None:
        entry = self._open
        if entry is None or entry.kind != kind:
            self._close_open(out)
            if kind == "message":
                entry = self._add(kind, message_item(new_id("msg"), "", "in_progress"), out)
                part: Json = text_part("")
            else:
                entry = self._add(kind, reasoning_item(new_id("rs"), ""), out)
                part = {"type": "reasoning_text", "text": ""}
            added: Json = {"type": "response.content_part.added", **self._at(entry), "part": part}
            self._emit(out, added)
            self._open = entry
        entry.parts.append(text)
        self._chars += len(text)
        payload: Json = {"type": "response.output_text.delta", **self._at(entry), "delta": text}
        if kind == "message":
            payload["logprobs"] = []
        else:
            payload["type"] = "response.reasoning_text.delta"
        self._emit(out, payload)

    def _tool_call(self, call: Json, out: list[bytes]) -> None:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        entry = self._calls.get(position)
        if entry is None:
            self._close_open(out)
            call_id = str(call.get("id") or new_id("call"))
            item = function_call_item(call_id, str(fn.get("name") or ""), "", "in_progress")
            entry = self._calls[position] = self._add("function_call", item, out)
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments and not entry.done:
            entry.parts.append(arguments)
            self._chars += len(arguments)
            self._emit(
                out,
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": entry.item["id"],
                    "output_index": entry.index,
                    "delta": arguments,
                },
            )

    def _at(self, entry: _Item) -> Json:
        return {"item_id": entry.item["id"], "output_index": entry.index, "content_index": 0}

    def _close_open(self, out: list[bytes]) -> None:
        entry, self._open = self._open, None
        if entry is None:
            return
        text = "".join(entry.parts)
        done: Json = {"type": "response.output_text.done", **self._at(entry), "text": text}
        if entry.kind == "message":
            done["logprobs"] = []
            self._emit(out, done)
            part = text_part(text)
            entry.item = message_item(entry.item["id"], text)
        else:
            done["type"] = "response.reasoning_text.done"
            self._emit(out, done)
            part = {"type": "reasoning_text", "text": text}
            entry.item = reasoning_item(entry.item["id"], text)
        self._emit(out, {"type": "response.content_part.done", **self._at(entry), "part": part})
        self._done(entry, out)

    def _close_all(self, out: list[bytes]) -> None:
        self._close_open(out)
        for entry in self._calls.values():
            if entry.done:
                continue
            arguments = "".join(entry.parts)
            entry.item = {**entry.item, "arguments": arguments, "status": "completed"}
            self._emit(
                out,
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": entry.item["id"],
                    "output_index": entry.index,
                    "arguments": arguments,
                },
            )
            self._done(entry, out)

    def _done(self, entry: _Item, out: list[bytes]) -> None:
        entry.done = True
        self._emit(
            out,
            {"type": "response.output_item.done", "output_index": entry.index, "item": entry.item},
        )
