"""Request bodies: Anthropic messages <-> canonical OpenAI chat.

Facts used (Anthropic "Messages" and OpenAI "Chat Completions" references):
Anthropic keeps the system prompt outside `messages`, requires `max_tokens`,
carries tool results as `tool_result` blocks in a user turn and tool calls as
`tool_use` blocks whose `input` is an object; OpenAI has system/developer
messages, role "tool" messages and `tool_calls` whose arguments are a JSON
string. Fields a side cannot express travel as extension fields (see the
package docstring) so that a round trip loses nothing.
"""

from __future__ import annotations

from typing import Any

from aicp.errors import InvalidRequest
from aicp.protocol.jsonutil import Json, dumps, tool_arguments

#: OpenAI may omit the output limit; Anthropic requires one. 4096 is the limit
#: every current Claude model accepts, so the default never causes a 400.
DEFAULT_MAX_TOKENS = 4096

#: OpenAI `reasoning_effort` -> Anthropic thinking `budget_tokens`. Anthropic's
#: floor is 1024; the steps double roughly as OpenAI's efforts do.
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}

_CHOICE_TO_CHAT = {"auto": "auto", "any": "required", "none": "none"}
_CHOICE_TO_MESSAGES = {v: k for k, v in _CHOICE_TO_CHAT.items()}
_SYSTEM_ROLES = frozenset({"system", "developer"})
_EMPTY_SCHEMA: Json = {"type": "object", "properties": {}}


# --- Anthropic -> OpenAI ------------------------------------------------------


def messages_to_chat(body: Json) -> Json:
    """An Anthropic messages request in canonical OpenAI chat form."""
    messages: list[Json] = []
    system = _system_to_chat(body.get("system"))
    if system is not None:
        messages.append(system)
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.extend(_message_to_chat(message))
    out: Json = {"model": body.get("model"), "messages": messages}
    for key in ("max_tokens", "temperature", "top_p", "top_k", "stream", "thinking"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stream"):
        # An Anthropic client always gets usage at the end of its stream.
        out["stream_options"] = {"include_usage": True}
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id"):
        out["user"] = str(metadata["user_id"])
    if body.get("tools"):
        out["tools"] = [_tool_to_chat(t) for t in body["tools"] if isinstance(t, dict)]
    if isinstance(body.get("tool_choice"), dict):
        _tool_choice_to_chat(body["tool_choice"], out)
    return out


def _system_to_chat(system: Any) -> Json | None:
    if isinstance(system, str):
        return {"role": "system", "content": system} if system else None
    if not isinstance(system, list) or not system:
        return None
    parts = [_block_to_part(b) for b in system if isinstance(b, dict)]
    if any("cache_control" in p for p in parts):
        return {"role": "system", "content": parts}
    return {"role": "system", "content": "\n\n".join(str(p.get("text", "")) for p in parts)}


def _message_to_chat(message: Json) -> list[Json]:
    role = message.get("role")
    content = message.get("content")
    if not isinstance(content, list):
        return [{"role": role, "content": content if isinstance(content, str) else ""}]
    blocks = [b for b in content if isinstance(b, dict)]
    if role == "assistant":
        return [_assistant_to_chat(blocks)]
    out = [_tool_result_to_chat(b) for b in blocks if b.get("type") == "tool_result"]
    parts = [_block_to_part(b) for b in blocks if b.get("type") != "tool_result"]
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _block_to_part(block: Json) -> Json:
    """A user content block as an OpenAI content part (unknown blocks kept as they are)."""
    kind = block.get("type")
    part: Json | None = None
    if kind == "text":
        part = {"type": "text", "text": block.get("text", "")}
    elif kind == "image":
        url = _source_url(block.get("source"))
        part = {"type": "image_url", "image_url": {"url": url}} if url else None
    elif kind == "document":
        part = _document_to_part(block)
    if part is None:
        return dict(block)
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _source_url(source: Any) -> str | None:
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    return None


def _document_to_part(block: Json) -> Json | None:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    if source.get("type") == "base64":
        file: Json = {"file_data": _source_url(source)}
        file["filename"] = str(block.get("title") or "document.pdf")
        return {"type": "file", "file": file}
    return None  # URL and file-id documents have no OpenAI form: kept as blocks


def _tool_result_to_chat(block: Json) -> Json:
    content = block.get("content")
    if isinstance(content, list):
        parts = [_block_to_part(b) for b in content if isinstance(b, dict)]
        plain = all(p.get("type") == "text" and len(p) == 2 for p in parts)
        content = "\n".join(p["text"] for p in parts) if plain else parts
    message: Json = {
        "role": "tool",
        "tool_call_id": block.get("tool_use_id", ""),
        "content": content if content is not None else "",
    }
    if block.get("is_error"):
        message["is_error"] = True
    if "cache_control" in block:
        message["cache_control"] = block["cache_control"]
    return message


def _assistant_to_chat(blocks: list[Json]) -> Json:
    texts: list[Json] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(_block_to_part(block))
        elif kind == "tool_use":
            calls.append(_tool_use_to_call(block))
        elif kind == "thinking":
            thinking.append(
                {"type": "thinking", "thinking": block.get("thinking", ""), **_sig(block)}
            )
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data", "")})
    message: Json = {"role": "assistant", "content": _assistant_content(texts)}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(t.get("thinking", "") for t in thinking)
        message["thinking_blocks"] = thinking
    return message


def _sig(block: Json) -> Json:
    return {"signature": block["signature"]} if "signature" in block else {}


def _assistant_content(texts: list[Json]) -> str | list[Json] | None:
    if not texts:
        return None
    if any("cache_control" in t for t in texts):
        return texts
    return "".join(str(t.get("text", "")) for t in texts)


def _tool_use_to_call(block: Json) -> Json:
    arguments = dumps(block.get("input") or {}).decode()
    return {
        "id": block.get("id", ""),
        "type": "function",
        "function": {"name": block.get("name", ""), "arguments": arguments},
    }


def _tool_to_chat(tool: Json) -> Json:
    if "input_schema" not in tool and tool.get("type") not in (None, "custom"):
        return dict(tool)  # a server tool (web search, bash, ...): only Anthropic runs it
    fn: Json = {
        "name": tool.get("name", ""),
        "parameters": tool.get("input_schema") or _EMPTY_SCHEMA,
    }
    if tool.get("description"):
        fn["description"] = tool["description"]
    out: Json = {"type": "function", "function": fn}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice_to_chat(choice: Json, out: Json) -> None:
    kind = choice.get("type")
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    elif kind in _CHOICE_TO_CHAT:
        out["tool_choice"] = _CHOICE_TO_CHAT[kind]
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


# --- OpenAI -> Anthropic ------------------------------------------------------


def chat_to_messages(body: Json) -> Json:
    """A canonical OpenAI chat request as an Anthropic messages request."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest("Anthropic models return one choice: 'n' must be 1", param="n")
    system: list[Json] = []
    turns: list[tuple[str, list[Json]]] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.extend(_text_parts(message.get("content")))
        elif role == "assistant":
            turns.append(("assistant", _assistant_to_blocks(message)))
        elif role in ("tool", "function"):
            turns.append(("user", [_tool_message_to_result(message)]))
        else:
            turns.append(("user", _parts_to_blocks(message.get("content"))))
    out: Json = {
        "model": body.get("model"),
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
        "messages": _merge_turns(turns),
    }
    out["max_tokens"] = out["max_tokens"] or DEFAULT_MAX_TOKENS
    if system:
        out["system"] = _system_from_parts(system)
    _sampling_to_messages(body, out)
    _tools_to_messages(body, out)
    _thinking_to_messages(body, out)
    return out


def _text_parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def _system_from_parts(parts: list[Json]) -> str | list[Json]:
    if any("cache_control" in p for p in parts):
        return [_text_block(p) for p in parts]
    return "\n\n".join(str(p.get("text", "")) for p in parts)


def _text_block(part: Json) -> Json:
    block: Json = {"type": "text", "text": str(part.get("text", ""))}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _parts_to_blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    blocks = [_part_to_block(p) for p in content if isinstance(p, dict)]
    # Anthropic rejects empty text blocks; OpenAI clients sometimes send them.
    return [b for b in blocks if not (b.get("type") == "text" and not b.get("text"))]


def _part_to_block(part: Json) -> Json:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return _text_block({**part, "text": part.get("text", part.get("refusal", ""))})
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url", "") if isinstance(image, dict) else str(image or "")
        block: Json = {"type": "image", "source": _image_source(url)}
    elif kind == "file":
        block = _file_to_document(part.get("file") or {})
    elif kind == "input_audio":
        raise InvalidRequest("Anthropic models do not accept audio input", param="messages")
    else:
        return dict(part)  # an Anthropic block carried through the canonical form
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")], data


def _image_source(url: str) -> Json:
    inline = _data_url(url)
    if inline is None:
        return {"type": "url", "url": url}
    return {"type": "base64", "media_type": inline[0], "data": inline[1]}


def _file_to_document(file: Json) -> Json:
    data = str(file.get("file_data") or "")
    if not data:
        raise InvalidRequest(
            "file parts need file_data (base64) for Anthropic models; file ids are OpenAI's own",
            param="messages",
        )
    # OpenAI documents bare base64; its SDK examples send a data: URL. Accept both.
    media_type, data = _data_url(data) or ("application/pdf", data)
    source = {"type": "base64", "media_type": media_type or "application/pdf", "data": data}
    block: Json = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _assistant_to_blocks(message: Json) -> list[Json]:
    blocks: list[Json] = []
    # Thinking comes first: Anthropic checks the signed blocks precede the answer.
    for tb in message.get("thinking_blocks") or []:
        if isinstance(tb, dict) and tb.get("type") == "thinking":
            blocks.append({"type": "thinking", "thinking": tb.get("thinking", ""), **_sig(tb)})
        elif isinstance(tb, dict) and tb.get("type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": tb.get("data", "")})
    blocks.extend(_parts_to_blocks(message.get("content")))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": tool_arguments(
                    fn.get("arguments"),
                    "tool_calls[].function.arguments must be a JSON object",
                    param="messages",
                    wrap=False,
                ),
            }
        )
    return blocks


def _tool_message_to_result(message: Json) -> Json:
    content = message.get("content")
    block: Json = {
        "type": "tool_result",
        # Legacy role "function" messages carry a name, not an id.
        "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
        "content": content if isinstance(content, str) else _parts_to_blocks(content),
    }
    if message.get("is_error"):
        block["is_error"] = True
    if "cache_control" in message:
        block["cache_control"] = message["cache_control"]
    return block


def _merge_turns(turns: list[tuple[str, list[Json]]]) -> list[Json]:
    """Consecutive turns of one role become one message, as Anthropic expects
    (all results of one assistant turn's tool calls go back in one user turn)."""
    merged: list[Json] = []
    for role, blocks in turns:
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": list(blocks)})
    for message in merged:
        content = message["content"]
        if len(content) == 1 and content[0].get("type") == "text" and len(content[0]) == 2:
            message["content"] = content[0]["text"]
    return merged


def _sampling_to_messages(body: Json, out: Json) -> None:
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [str(s) for s in stop]
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(float(temperature), 1.0)  # OpenAI allows 0-2, Anthropic 0-1
    for key in ("top_p", "top_k", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}


def _tools_to_messages(body: Json, out: Json) -> None:
    tools = [_tool_to_messages(t) for t in body.get("tools") or [] if isinstance(t, dict)]
    if not tools:
        return  # Anthropic rejects tool_choice without tools
    out["tools"] = tools
    choice = body.get("tool_choice")
    anthropic: Json | None = None
    if isinstance(choice, str) and choice in _CHOICE_TO_MESSAGES:
        anthropic = {"type": _CHOICE_TO_MESSAGES[choice]}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        anthropic = {"type": "tool", "name": name}
    if body.get("parallel_tool_calls") is False:
        anthropic = anthropic or {"type": "auto"}
        if anthropic["type"] != "none":
            anthropic["disable_parallel_tool_use"] = True
    if anthropic is not None:
        out["tool_choice"] = anthropic


def _tool_to_messages(tool: Json) -> Json:
    if tool.get("type") != "function":
        return dict(tool)  # an Anthropic server tool carried through the canonical form
    fn = tool.get("function") or {}
    out: Json = {"name": fn.get("name", ""), "input_schema": fn.get("parameters") or _EMPTY_SCHEMA}
    if fn.get("description"):
        out["description"] = fn["description"]
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _thinking_to_messages(body: Json, out: Json) -> None:
    thinking = body.get("thinking")
    effort = body.get("reasoning_effort")
    if not isinstance(thinking, dict) and effort in THINKING_BUDGETS:
        thinking = {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}
    if not isinstance(thinking, dict):
        return
    out["thinking"] = thinking
    if thinking.get("type") == "disabled":
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and budget >= out["max_tokens"]:
        # Anthropic requires budget_tokens < max_tokens; leave room for the answer.
        out["max_tokens"] = budget + DEFAULT_MAX_TOKENS
    # Extended thinking rejects a changed temperature and any top_k.
    if out.get("temperature", 1.0) != 1.0:
        del out["temperature"]
    out.pop("top_k", None)
