"""Requests: an OpenAI Responses body -> the canonical (OpenAI chat) form.

A Responses conversation is a flat list of items; chat groups them into
messages. A `function_call` item joins the assistant message before it (so a
turn with text and calls stays one message, as chat expects), a
`function_call_output` becomes a `tool` message, and a `reasoning` item
travels as `reasoning_content` on the next assistant message. State kept by
OpenAI (`previous_response_id`, `conversation`, stored prompts) cannot be
translated: it exists only on OpenAI's side.
"""

from __future__ import annotations

from typing import Any

from aicp.errors import InvalidRequest
from aicp.protocol.jsonutil import Json, dumps

#: Responses fields copied to chat unchanged.
_SAME = ("temperature", "top_p", "metadata", "user", "parallel_tool_calls", "stream")
#: Responses fields that need OpenAI's stored state.
_STATEFUL = ("previous_response_id", "conversation", "prompt")
#: Message roles; `developer` is a system prompt to every provider but OpenAI.
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def responses_to_chat(body: Json) -> Json:
    """A Responses request as a canonical chat request (a new dict)."""
    for key in _STATEFUL:
        if body.get(key):
            raise InvalidRequest(
                f"'{key}' needs OpenAI's stored state; this model's provider has no "
                "Responses API, so send the whole conversation in 'input'",
                param=key,
            )
    out: Json = {"model": body.get("model")}
    messages: list[Json] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        _Items(messages).add_all(raw)
    out["messages"] = messages
    for key in _SAME:
        if body.get(key) is not None:
            out[key] = body[key]
    if isinstance(body.get("max_output_tokens"), int):
        out["max_tokens"] = body["max_output_tokens"]
    tools = [_tool(i, t) for i, t in enumerate(body.get("tools") or [])]
    if tools:
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        out["tool_choice"] = choice
    fmt = _response_format((body.get("text") or {}).get("format"))
    if fmt is not None:
        out["response_format"] = fmt
    effort = (body.get("reasoning") or {}).get("effort")
    if isinstance(effort, str):
        out["reasoning_effort"] = effort
    if body.get("stream") is True:
        # The client's final event carries usage, so the canonical stream must report it.
        out["stream_options"] = {"include_usage": True}
    return out


class _Items:
    """Input items -> chat messages, grouping what chat keeps in one message."""

    def __init__(self, messages: list[Json]) -> None:
        self.messages = messages
        self.reasoning: list[str] = []

    def add_all(self, items: list[Any]) -> None:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
            kind = item.get("type") or ("message" if "role" in item else None)
            if kind == "message":
                self._message(i, item)
            elif kind == "function_call":
                self._assistant()["tool_calls"].append(
                    {
                        "id": str(item.get("call_id") or item.get("id") or f"call_{i}"),
                        "type": "function",
                        "function": {
                            "name": str(item.get("name") or ""),
                            "arguments": _arguments(item.get("arguments")),
                        },
                    }
                )
            elif kind == "function_call_output":
                self.messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(item.get("call_id") or ""),
                        "content": _output_text(item.get("output")),
                    }
                )
            elif kind == "reasoning":
                self.reasoning.extend(_reasoning_text(item))
            else:
                raise InvalidRequest(
                    f"input[{i}]: items of type {kind!r} can only go to a provider with the "
                    "Responses API; this model is served through chat completions",
                    param=f"input[{i}].type",
                )

    def _message(self, i: int, item: Json) -> None:
        role = _ROLES.get(str(item.get("role")))
        if role is None:
            raise InvalidRequest(
                f"input[{i}].role must be one of {', '.join(_ROLES)}", param=f"input[{i}].role"
            )
        content = item.get("content")
        parts = [content] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise InvalidRequest(
                f"input[{i}].content must be a string or an array of parts",
                param=f"input[{i}].content",
            )
        chat_parts = [_part(i, j, p) for j, p in enumerate(parts)]
        if role == "assistant":
            text = "".join(str(p.get("text", "")) for p in chat_parts)
            message: Json = {"role": "assistant", "content": text or None}
            self.messages.append(self._with_reasoning(message))
            return
        self.messages.append({"role": role, "content": _collapse(chat_parts)})

    def _assistant(self) -> Json:
        """The assistant message a function call joins: the one just before, else a new one."""
        last = self.messages[-1] if self.messages else None
        if last is None or last.get("role") != "assistant":
            last = {"role": "assistant", "content": None}
            self.messages.append(last)
        self._with_reasoning(last).setdefault("tool_calls", [])
        return last

    def _with_reasoning(self, message: Json) -> Json:
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
            self.reasoning = []
        return message


def _part(i: int, j: int, part: Any) -> Json:
    where = f"input[{i}].content[{j}]"
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"{where}: only images given by 'image_url' (a URL or a data: URL) can be "
                "translated; a 'file_id' lives in OpenAI's file store",
                param=where,
            )
        image: Json = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio") or {}}
    raise InvalidRequest(f"{where}: unsupported content type {kind!r}", param=f"{where}.type")


def _collapse(parts: list[Json]) -> str | list[Json]:
    """One text part as a plain string: every chat server accepts that."""
    if len(parts) == 1 and parts[0].get("type") == "text":
        return str(parts[0]["text"])
    return parts


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return dumps(value if value is not None else {}).decode()


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(
            str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p
        )
    return "" if output is None else dumps(output).decode()


def _reasoning_text(item: Json) -> list[str]:
    texts = [p.get("text") for p in item.get("content") or [] if isinstance(p, dict)]
    if not any(texts):
        texts = [p.get("text") for p in item.get("summary") or [] if isinstance(p, dict)]
    return [t for t in texts if isinstance(t, str)]


def _tool(i: int, tool: Any) -> Json:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise InvalidRequest(
            f"tools[{i}]: tools of type {kind!r} run inside OpenAI's Responses API; this "
            "model is served through chat completions, which takes function tools only",
            param=f"tools[{i}].type",
        )
    fn: Json = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            fn[key] = tool[key]
    return {"type": "function", "function": fn}


def _tool_choice(choice: Any) -> str | Json | None:
    if isinstance(choice, str):
        return choice
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("type") == "allowed_tools":
        mode = choice.get("mode")
        return mode if isinstance(mode, str) else "auto"
    return None  # a hosted tool: there is none to force in chat


def _response_format(fmt: Any) -> Json | None:
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return None
