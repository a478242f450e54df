"""Canonical OpenAI chat <-> AWS Bedrock Converse / ConverseStream.

Shapes follow the Bedrock Runtime API reference (Converse, ConverseStream,
ContentBlock, ContentBlockDelta, TokenUsage). Converse is JSON over REST; its
stream is the binary `application/vnd.amazon.eventstream`, whose framing is
decoded elsewhere: the translator here receives (event type, JSON payload).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from aicp.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.providers.base import Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}

#: Thinking budgets for `reasoning_effort` on Claude, which takes a token budget instead.
_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}

_DATA_URL = re.compile(r"data:image/([A-Za-z0-9.+-]+);base64,(.*)", re.DOTALL)

_CACHE_POINT: Json = {"cachePoint": {"type": "default"}}


# --- requests ------------------------------------------------------------------


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
                    "input": _arguments(fn.get("arguments")),
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


def _arguments(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = loads(raw)
    except ValueError as exc:
        raise InvalidRequest(
            "tool call arguments must be a JSON object for Bedrock", param="messages"
        ) from exc
    return value if isinstance(value, dict) else {"value": value}


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


# --- complete responses --------------------------------------------------------


def converse_to_completion(resp: Json, model: str) -> Json:
    """A Converse response as a canonical `chat.completion`."""
    content = ((resp.get("output") or {}).get("message") or {}).get("content") or []
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[Json] = []
    tool_calls: list[Json] = []
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            tool_calls.append(_tool_call(block["toolUse"]))
        elif "reasoningContent" in block:
            _collect_reasoning(block["reasoningContent"], reasoning, thinking_blocks)
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    finish = FINISH_REASONS.get(str(resp.get("stopReason")), "stop")
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_dict(resp.get("usage")),
    }


def _tool_call(use: Json) -> Json:
    return {
        "id": use.get("toolUseId") or "",
        "type": "function",
        "function": {"name": use.get("name") or "", "arguments": _dump(use.get("input"))},
    }


def _dump(value: Any) -> str:
    return dumps(value if value is not None else {}).decode()


def _collect_reasoning(block: Json, texts: list[str], out: list[Json]) -> None:
    if "reasoningText" in block:
        rt = block["reasoningText"] or {}
        texts.append(rt.get("text") or "")
        out.append(
            {"type": "thinking", "thinking": rt.get("text") or "", "signature": rt.get("signature")}
        )
    elif "redactedContent" in block:
        out.append({"type": "redacted_thinking", "data": block["redactedContent"]})


def usage_dict(usage: Any) -> Json:
    """Bedrock TokenUsage as canonical usage.

    As in OpenAI's usage, prompt_tokens counts every input token, cache reads
    and writes included; Bedrock reports those apart from inputTokens.
    """
    u = usage if isinstance(usage, dict) else {}
    read = int(u.get("cacheReadInputTokens") or 0)
    write = int(u.get("cacheWriteInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + read + write
    completion = int(u.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_creation_input_tokens": write,
    }


def _completion_id() -> str:
    # Converse answers carry no id of their own (only the x-amzn-RequestId header).
    return "chatcmpl-" + uuid.uuid4().hex[:24]


# --- streams -------------------------------------------------------------------

#: ConverseStream exception events and the HTTP status each stands for (API reference).
STREAM_EXCEPTIONS = {
    "validationException": 400,
    "modelStreamErrorException": 424,
    "throttlingException": 429,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}


def stream_exception(kind: str, payload: bytes) -> UpstreamStatusError:
    """An exception event of a ConverseStream as the error it stands for."""
    message = kind
    try:
        data = loads(payload) if payload else {}
    except ValueError:
        data = {}
    if isinstance(data, dict) and (data.get("message") or data.get("Message")):
        message = f"{kind}: {data.get('message') or data.get('Message')}"
    status = STREAM_EXCEPTIONS.get(kind, 502)
    return UpstreamStatusError(f"Bedrock stream error: {message}", status=status, body=payload)


class StreamTranslator:
    """ConverseStream events -> canonical `chat.completion.chunk` dicts."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self.id = _completion_id()
        self.created = int(time.time())
        self.finished = False
        self.ended = False
        #: contentBlockIndex of a toolUse block -> its index among tool_calls
        self._tools: dict[int, int] = {}

    def feed(self, event: str, payload: Json) -> list[Json]:
        handler = getattr(self, "_on_" + event, None)
        if handler is None:
            return []  # events we do not translate (and ones added later)
        chunks: list[Json] = handler(payload)
        return chunks

    def close(self) -> list[Json]:
        if not self.finished:
            # A clean end without messageStop is a cut, not an answer.
            raise UpstreamUnavailable("the Bedrock stream ended before its messageStop event")
        return []

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _on_messageStart(self, payload: Json) -> list[Json]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_contentBlockStart(self, payload: Json) -> list[Json]:
        use = (payload.get("start") or {}).get("toolUse")
        if not use:
            return []
        index = len(self._tools)
        self._tools[int(payload.get("contentBlockIndex") or 0)] = index
        call = {
            "index": index,
            "id": use.get("toolUseId") or "",
            "type": "function",
            "function": {"name": use.get("name") or "", "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_contentBlockDelta(self, payload: Json) -> list[Json]:
        delta = payload.get("delta") or {}
        if "text" in delta:
            return [self._chunk({"content": delta["text"]})]
        if "toolUse" in delta:
            index = self._tools.get(int(payload.get("contentBlockIndex") or 0), 0)
            part = (delta["toolUse"] or {}).get("input") or ""
            return [
                self._chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            ]
        return self._reasoning(delta.get("reasoningContent") or {})

    def _reasoning(self, delta: Json) -> list[Json]:
        if delta.get("text"):
            return [self._chunk({"reasoning_content": delta["text"]})]
        # The signature closes a thinking block; Claude needs it to accept the block
        # back in a later turn, so it travels as a canonical thinking block.
        if delta.get("signature"):
            block = {"type": "thinking", "thinking": "", "signature": delta["signature"]}
            return [self._chunk({"thinking_blocks": [block]})]
        if delta.get("redactedContent"):
            block = {"type": "redacted_thinking", "data": delta["redactedContent"]}
            return [self._chunk({"thinking_blocks": [block]})]
        return []

    def _on_messageStop(self, payload: Json) -> list[Json]:
        self.finished = True
        finish = FINISH_REASONS.get(str(payload.get("stopReason")), "stop")
        return [self._chunk({}, finish)]

    def _on_metadata(self, payload: Json) -> list[Json]:
        self.ended = True
        usage = usage_dict(payload.get("usage"))
        details = usage["prompt_tokens_details"]
        self.usage = Usage(
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cached_tokens=details["cached_tokens"],
            cache_creation_tokens=usage["cache_creation_input_tokens"],
        )
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage
        return [chunk]
