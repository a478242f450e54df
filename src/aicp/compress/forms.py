"""Where a chat request keeps its messages, its text and its tool pairs, per protocol.

A `Form` reads one protocol's body (OpenAI chat or Anthropic messages) for the
steps: each message's kind, the paths of its strings of text, and what counts as
tokens. Writing goes through `replaced`, which copies only the containers on the
path, so the caller's body is never changed.

Only text is ever rewritten: images, documents, thinking blocks (which carry
signatures), tool-use ids and tool-call arguments are read for counting at most.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from aicp.protocol.jsonutil import Json, dumps

Path = tuple[str | int, ...]

#: Kinds of message. A turn starts at a USER message; RESULT messages carry tool
#: results and belong to the assistant message before them.
SYSTEM, USER, ASSISTANT, RESULT = "system", "user", "assistant", "result"

#: OpenAI's per-message overhead (`<|start|>{role}<|message|>...<|end|>`), a name's
#: extra token and the reply's priming, from OpenAI's token-counting guide.
PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3
#: Per tool call or tool result beyond its text: an estimate (ids, wrappers).
PER_TOOL_ITEM = 3
#: Parts that are not text, estimated: an OpenAI image at detail low, at high/auto
#: (a 1024 x 1024 image: 85 + 4 tiles x 170); an Anthropic image near its
#: 1.15-megapixel cap (width x height / 750); any other non-text part.
OPENAI_IMAGE_LOW = 85
OPENAI_IMAGE = 765
OTHER_PART = 1_600


def read(obj: Any, path: Path) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def replaced(obj: Any, path: Path, value: Any) -> Any:
    """A copy of `obj` with `value` at `path`; only containers on the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, list):
        new_list = list(obj)
        new_list[head] = replaced(obj[head], rest, value)  # type: ignore[index]
        return new_list
    new = dict(obj)
    new[head] = replaced(obj[head], rest, value)
    return new


class Form(Protocol):
    """One protocol's layout of a chat request."""

    name: str

    def kind(self, message: Json) -> str: ...

    def text_paths(self, message: Json, results: bool) -> list[Path]:
        """Paths of the message's text; tool results' text only when `results`."""
        ...

    def counted(self, message: Json) -> tuple[list[str], int]:
        """The strings a message's tokens are counted from, and estimated extra tokens."""
        ...

    def system_paths(self, body: Json) -> list[Path]:
        """Paths (from the body) of system-prompt text kept outside `messages`."""
        ...

    def tools_text(self, body: Json, encoding: str) -> tuple[list[str], int]:
        """Tool definitions as strings to count, and their fixed extra tokens."""
        ...

    def with_prefix(self, message: Json, text: str) -> Json:
        """The message with `text` as a first text part (for a summary)."""
        ...


def _parts(value: Any) -> Iterator[tuple[int, Json]]:
    if isinstance(value, list):
        for i, part in enumerate(value):
            if isinstance(part, dict):
                yield i, part


def _text_path(part: Json, base: Path) -> list[Path]:
    return [(*base, "text")] if isinstance(part.get("text"), str) else []


def _content_paths(message: Json, key: str = "content") -> list[Path]:
    """A string, or the text parts of a list."""
    content = message.get(key)
    if isinstance(content, str):
        return [(key,)]
    paths: list[Path] = []
    for i, part in _parts(content):
        if part.get("type") == "text":
            paths += _text_path(part, (key, i))
    return paths


def _prefix_content(message: Json, text: str) -> Json:
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": [{"type": "text", "text": text}, *content]}
    rest = content if isinstance(content, str) else ""
    return {**message, "content": f"{text}\n\n{rest}" if rest else text}


class OpenAIChat:
    """OpenAI chat completions: `messages` with system/developer/user/assistant/tool roles."""

    name = "openai"

    def kind(self, message: Json) -> str:
        role = message.get("role")
        if role in ("system", "developer"):
            return SYSTEM
        if role in ("tool", "function"):
            return RESULT
        return ASSISTANT if role == "assistant" else USER

    def text_paths(self, message: Json, results: bool) -> list[Path]:
        if not results and self.kind(message) == RESULT:
            return []
        return _content_paths(message)

    def counted(self, message: Json) -> tuple[list[str], int]:
        content = message.get("content")
        if len(message) == 2 and type(content) is str and "role" in message:
            return [str(message["role"]), content], PER_MESSAGE  # most messages: no lookups
        texts = [str(message.get("role", ""))]
        extra = PER_MESSAGE
        name = message.get("name")
        if isinstance(name, str):
            texts.append(name)
            extra += PER_NAME
        # The checks before each loop spare a plain text message the generators.
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            extra += self._content(content, texts)
        calls = message.get("tool_calls")
        if calls:
            for _, call in _parts(calls):
                function = call.get("function") or {}
                texts += [str(function.get("name", "")), str(function.get("arguments", ""))]
                extra += PER_TOOL_ITEM
        if isinstance(message.get("tool_call_id"), str):
            texts.append(message["tool_call_id"])
        return texts, extra

    def _content(self, content: list[Any], texts: list[str]) -> int:
        """Adds the parts' text to `texts`; the estimated tokens of the others."""
        extra = 0
        for _, part in _parts(content):
            kind = part.get("type")
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
            elif kind == "image_url":
                detail = (part.get("image_url") or {}).get("detail")
                extra += OPENAI_IMAGE_LOW if detail == "low" else OPENAI_IMAGE
            else:
                extra += OTHER_PART
        return extra

    def system_paths(self, body: Json) -> list[Path]:
        return []

    def tools_text(self, body: Json, encoding: str) -> tuple[list[str], int]:
        # OpenAI's guide: per function 7 tokens (10 on cl100k models), "name:description",
        # per property 3 + "name:type:description", an enum -3 and 3 per item, 12 at the end.
        texts: list[str] = []
        extra = 0
        for _, tool in _parts(body.get("tools")):
            function = tool.get("function")
            if not isinstance(function, dict):
                texts.append(dumps(tool).decode())
                continue
            extra += 10 if encoding == "cl100k_base" else 7
            texts.append(f"{function.get('name', '')}:{_sentence(function.get('description'))}")
            properties = (function.get("parameters") or {}).get("properties") or {}
            if properties:
                extra += 3
            for key, spec in properties.items() if isinstance(properties, dict) else ():
                extra += 3
                spec = spec if isinstance(spec, dict) else {}
                line = f"{key}:{spec.get('type', '')}:{_sentence(spec.get('description'))}"
                texts.append(line)
                enum = spec.get("enum") or ()
                extra -= 3 if enum else 0
                for item in enum:
                    extra += 3
                    texts.append(str(item))
                nested = {k: v for k, v in spec.items() if k in ("properties", "items")}
                if nested:  # beyond the guide's formula: nested schemas as JSON
                    texts.append(dumps(nested).decode())
        return texts, extra + (12 if texts else 0)

    def with_prefix(self, message: Json, text: str) -> Json:
        return _prefix_content(message, text)


def _sentence(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return text[:-1] if text.endswith(".") else text


class AnthropicMessages:
    """Anthropic messages: `system` outside, content blocks, tool results in user turns."""

    name = "anthropic"

    #: Anthropic documents a tool-use system prompt of about 300-350 tokens.
    TOOL_PROMPT = 346

    def kind(self, message: Json) -> str:
        if message.get("role") == "assistant":
            return ASSISTANT
        content = message.get("content")
        if isinstance(content, list) and any(
            part.get("type") == "tool_result" for _, part in _parts(content)
        ):
            return RESULT
        return USER

    def text_paths(self, message: Json, results: bool) -> list[Path]:
        content = message.get("content")
        if isinstance(content, str):
            return [("content",)]
        paths: list[Path] = []
        for i, block in _parts(content):
            kind = block.get("type")
            if kind == "text":
                paths += _text_path(block, ("content", i))
            elif kind == "tool_result" and results:
                paths += [("content", i, *p) for p in _content_paths(block)]
        return paths

    def counted(self, message: Json) -> tuple[list[str], int]:
        texts = [str(message.get("role", ""))]
        extra = PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for _, block in _parts(content):
                extra += self._block(block, texts)
        return texts, extra

    def _block(self, block: Json, texts: list[str]) -> int:
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
            return 0
        if kind == "thinking" and isinstance(block.get("thinking"), str):
            texts.append(block["thinking"])
            return 0
        if kind == "tool_use":
            texts += [str(block.get("name", "")), dumps(block.get("input", {})).decode()]
            return PER_TOOL_ITEM
        if kind == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                texts.append(inner)
                return PER_TOOL_ITEM
            return PER_TOOL_ITEM + sum(self._block(b, texts) for _, b in _parts(inner))
        return OTHER_PART

    def system_paths(self, body: Json) -> list[Path]:
        system = body.get("system")
        if isinstance(system, str):
            return [("system",)]
        return [("system", i, "text") for i, b in _parts(system) if _text_path(b, ())]

    def tools_text(self, body: Json, encoding: str) -> tuple[list[str], int]:
        tools = body.get("tools")
        if not isinstance(tools, list) or not tools:
            return [], 0
        return [dumps(tools).decode()], self.TOOL_PROMPT

    def with_prefix(self, message: Json, text: str) -> Json:
        return _prefix_content(message, text)


FORMS: dict[str, Form] = {"openai": OpenAIChat(), "anthropic": AnthropicMessages()}


def form_for(protocol: str) -> Form:
    try:
        return FORMS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(FORMS)}") from None
