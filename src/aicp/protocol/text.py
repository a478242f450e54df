"""The prose of a request or a reply, where it sits in the body, in every protocol.

Classification and guardrails read the text a client sends (messages, system
prompts, tool results, embedding inputs) and redaction writes it back in
place, so each piece is a `Slot`: the container and the key holding one
string. Images, audio and token arrays are not text and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Content part types that carry text, across protocols.
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


@dataclass(slots=True)
class Slot:
    """One string of a body: `container[key]`."""

    container: Any
    key: Any

    @property
    def text(self) -> str:
        value: str = self.container[self.key]
        return value

    @text.setter
    def text(self, value: str) -> None:
        self.container[self.key] = value


def request_slots(protocol: str, operation: str, body: dict[str, Any]) -> list[Slot]:
    """Every string of prose in a request body (validated already: shapes are known)."""
    if operation == "embeddings":
        return list(_strings(body, "input"))
    if protocol == "anthropic":
        slots = list(_parts(body, "system"))
        for message in _dicts(body.get("messages")):
            slots.extend(_anthropic_content(message))
        return slots
    if protocol == "openai-responses":
        slots = list(_strings(body, "instructions"))
        items = body.get("input")
        if isinstance(items, str):
            slots.append(Slot(body, "input"))
        for item in _dicts(items):
            slots.extend(_parts(item, "content"))
            slots.extend(_strings(item, "output"))
            slots.extend(_strings(item, "arguments"))
        return slots
    slots = []
    for message in _dicts(body.get("messages")):
        slots.extend(_parts(message, "content"))
        for call in _dicts(message.get("tool_calls")):
            function = call.get("function")
            if isinstance(function, dict):
                slots.extend(_strings(function, "arguments"))
    return slots


def reply_slots(protocol: str, data: Any) -> list[Slot]:
    """The generated text of a whole reply (OpenAI chat, Anthropic messages, Responses)."""
    if not isinstance(data, dict):
        return []
    if protocol == "anthropic":
        return [Slot(b, "text") for b in _dicts(data.get("content")) if _is_text(b, "text")]
    if protocol == "openai-responses":
        slots: list[Slot] = []
        for item in _dicts(data.get("output")):
            slots.extend(_parts(item, "content"))
        return slots
    slots = []
    for choice in _dicts(data.get("choices")):
        message = choice.get("message")
        if isinstance(message, dict):
            slots.extend(_parts(message, "content"))
    return slots


def joined(slots: list[Slot]) -> str:
    """The slots' text as one document (for classification), newline-separated."""
    return "\n".join(s.text for s in slots)


# --- walking ---------------------------------------------------------------------------


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _strings(container: dict[str, Any], key: str) -> Iterator[Slot]:
    value = container.get(key)
    if isinstance(value, str):
        yield Slot(container, key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield Slot(value, i)


def _is_text(part: dict[str, Any], key: str) -> bool:
    return part.get("type") in _TEXT_PARTS and isinstance(part.get(key), str)


def _parts(container: dict[str, Any], key: str) -> Iterator[Slot]:
    """A string, or a list of content parts of which the text ones count."""
    value = container.get(key)
    if isinstance(value, str):
        yield Slot(container, key)
        return
    for part in _dicts(value):
        if _is_text(part, "text"):
            yield Slot(part, "text")


def _anthropic_content(message: dict[str, Any]) -> Iterator[Slot]:
    content = message.get("content")
    if isinstance(content, str):
        yield Slot(message, "content")
        return
    for block in _dicts(content):
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            yield Slot(block, "text")
        elif kind == "tool_result":
            yield from _parts(block, "content")
        elif kind == "tool_use":
            yield from _nested(block, "input")


def _nested(container: Any, key: Any, depth: int = 0) -> Iterator[Slot]:
    """Every string inside a JSON value (a tool call's input), however deep (to a limit)."""
    value = container[key]
    if isinstance(value, str):
        yield Slot(container, key)
    elif depth < 16 and isinstance(value, dict):
        for k in value:
            yield from _nested(value, k, depth + 1)
    elif depth < 16 and isinstance(value, list):
        for i in range(len(value)):
            yield from _nested(value, i, depth + 1)
