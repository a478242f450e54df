"""Canonical chat request -> Converse request body."""

from __future__ import annotations

import re
from typing import Any

from aicp.errors import InvalidRequest
from aicp.protocol.jsonutil import Json, tool_arguments

IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}

#: Thinking budgets for `reasoning_effort` on Claude, which takes a token budget instead.
_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}

DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "text/markdown": "md",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}

_FILE_URL = re.compile(r"data:([A-Za-z0-9.+/-]+);base64,(.*)", re.DOTALL)

_DATA_URL = re.compile(r"data:image/([A-Za-z0-9.+-]+);base64,(.*)", re.DOTALL)

_CACHE_POINT: Json = {"cachePoint": {"type": "default"}}


def chat_to_converse(body: Json, model: str = "") -> Json:
    """A canonical chat request as a Converse request body (the model goes in the URL)."""
    if int(body.get("n") or 1) > 1:
        raise InvalidRequest("Bedrock Converse returns one choice; n > 1 is not supported")
    system: list[Json] = []
    messages: list[Json] = []
    for msg in body.get("messages") or []:
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(msg.get("content")))
        elif role == "tool":
            _append(messages, "user", [_tool_result(msg), *_cache_point(msg)])
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(msg))
        elif role == "user":
            _append(messages, "user", _user_blocks(msg.get("content")))
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages")
    out: Json = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, messages)
    if tool_config:
        out["toolConfig"] = tool_config
    extra = _additional_fields(body, model)
    if extra:
        out["additionalModelRequestFields"] = extra
    return out


def _append(messages: list[Json], role: str, blocks: list[Json]) -> None:
    # Converse wants user and assistant turns to alternate, so consecutive
    # turns of one role (tool results, then the user's next words) become one.
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _cache_point(item: Json) -> list[Json]:
    # Anthropic's cache_control marks the end of a cached prefix; Converse says
    # the same with a cachePoint block placed after it.
    return [dict(_CACHE_POINT)] if item.get("cache_control") else []


def _text_blocks(content: Any) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[Json] = []
    for part in content:
        if part.get("type") != "text":
            raise InvalidRequest("system messages may only hold text", param="messages")
        if part.get("text"):
            blocks.append({"text": part["text"]})
            blocks.extend(_cache_point(part))
    return blocks


def _user_blocks(content: Any) -> list[Json]:
    if content is None or isinstance(content, str):
        return _text_blocks(content)
    blocks: list[Json] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url")))
        elif kind == "file":
            blocks.append(_document_block(part.get("file") or {}, len(blocks)))
        else:
            raise InvalidRequest(
                f"content part {kind!r} is not supported by Bedrock Converse", param="messages"
            )
        blocks.extend(_cache_point(part))
    return blocks


def _image_block(image: Any) -> Json:
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    match = _DATA_URL.fullmatch(url)
    if match is None:
        # Converse takes image bytes or an S3 location, never an http(s) URL, and
        # fetching arbitrary URLs from the gateway would be a server-side request forgery.
        raise InvalidRequest(
            "Bedrock Converse accepts images only as base64 data: URLs "
            "(data:image/png;base64,...), not http(s) URLs",
            param="messages",
        )
    fmt = IMAGE_FORMATS.get(match.group(1).lower())
    if fmt is None:
        raise InvalidRequest(
            f"image type {match.group(1)!r} is not supported by Bedrock (png, jpeg, gif, webp)",
            param="messages",
        )
    # Blobs travel base64-encoded in Converse's JSON, so the data URL's payload is reused as is.
    return {"image": {"format": fmt, "source": {"bytes": match.group(2)}}}


def _document_block(file: Json, position: int) -> Json:
    match = _FILE_URL.fullmatch(str(file.get("file_data") or ""))
    fmt = DOCUMENT_FORMATS.get(match.group(1).lower()) if match else None
    if match is None or fmt is None:
        raise InvalidRequest(
            "Bedrock Converse takes files as base64 data: URLs of a document type "
            f"({', '.join(sorted(set(DOCUMENT_FORMATS.values())))})",
            param="messages",
        )
    # Converse restricts document names to letters, digits, spaces, - ( ) [ ].
    stem = str(file.get("filename") or "").rsplit(".", 1)[0]
    name = " ".join(re.sub(r"[^A-Za-z0-9()\[\] -]", "-", stem).split()) or f"document-{position}"
    return {"document": {"format": fmt, "name": name, "source": {"bytes": match.group(2)}}}


def _assistant_blocks(msg: Json) -> list[Json]:
    blocks = _reasoning_blocks(msg)
    blocks.extend(_text_blocks(_only_text(msg.get("content"))))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id") or "",
                    "name": fn.get("name") or "",
                    "input": tool_arguments(
                        fn.get("arguments"),
                        "tool call arguments must be a JSON object for Bedrock",
                        param="messages",
                    ),
                }
            }
        )
    return blocks


def _only_text(content: Any) -> Any:
    if isinstance(content, list):
        return [p for p in content if p.get("type") == "text"]
    return content


def _reasoning_blocks(msg: Json) -> list[Json]:
    # Claude on Bedrock accepts earlier thinking only with its signature, so
    # only signed (or redacted) blocks are replayed; bare reasoning text is dropped.
    blocks: list[Json] = []
    for item in msg.get("thinking_blocks") or []:
        if item.get("type") == "thinking" and item.get("signature"):
            text = {"text": item.get("thinking") or "", "signature": item["signature"]}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif item.get("type") == "redacted_thinking" and item.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": item["data"]}})
    return blocks


def _tool_result(msg: Json) -> Json:
    content = msg.get("content")
    if isinstance(content, list):
        parts = [{"text": p["text"]} for p in content if p.get("type") == "text" and p.get("text")]
    else:
        parts = [{"text": str(content)}] if content else []
    result: Json = {"toolUseId": msg.get("tool_call_id") or "", "content": parts or [{"text": ""}]}
    if msg.get("is_error"):
        result["status"] = "error"
    return {"toolResult": result}


def _inference_config(body: Json) -> Json:
    config: Json = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _tool_config(body: Json, messages: list[Json]) -> Json | None:
    tools = body.get("tools") or []
    if not tools:
        return None
    choice = body.get("tool_choice")
    if choice == "none" and not _has_tool_use(messages):
        # Converse has no "none"; leaving the tools out says the same thing. With
        # tool use in the history the tools must stay declared, so they do.
        return None
    config: Json = {"tools": [spec for t in tools for spec in (_tool_spec(t), *_cache_point(t))]}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise InvalidRequest("tool_choice names no function", param="tool_choice")
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _has_tool_use(messages: list[Json]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _tool_spec(tool: Json) -> Json:
    if tool.get("type", "function") != "function":
        raise InvalidRequest(f"tool type {tool.get('type')!r} is not supported by Bedrock")
    fn = tool.get("function") or {}
    spec: Json = {
        "name": fn.get("name") or "",
        "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
    }
    if fn.get("description"):
        spec["description"] = fn["description"]
    return {"toolSpec": spec}


def _additional_fields(body: Json, model: str) -> Json:
    """Model-specific fields Converse passes through (Bedrock model parameter docs)."""
    extra: Json = {}
    claude = "anthropic." in model or "claude" in model
    thinking = body.get("thinking")
    effort = body.get("reasoning_effort")
    if isinstance(thinking, dict):
        extra["thinking"] = thinking  # Claude's extended thinking, as documented for Bedrock
    elif effort and claude:
        budget = _EFFORT_BUDGET.get(str(effort), _EFFORT_BUDGET["medium"])
        extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
    elif effort:
        # OpenAI's models on Bedrock take their other chat fields here verbatim.
        extra["reasoning_effort"] = effort
    if body.get("top_k") is not None:
        extra["top_k"] = body["top_k"]
    return extra
