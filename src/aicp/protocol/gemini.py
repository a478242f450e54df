"""Google Gemini `generateContent` <-> canonical OpenAI chat.

Requests: `chat_to_gemini`. Answers: `gemini_to_completion`, and `StreamTranslator`
for `streamGenerateContent?alt=sse`, whose every event is a whole
GenerateContentResponse holding the next slice of each candidate.
Embeddings live in `gemini_embed`.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import time
from typing import Any

from aicp.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.gemini_schema import clean_schema
from aicp.protocol.jsonutil import Json, dumps, loads, tool_arguments
from aicp.providers.base import Usage, usage_from_openai

#: Gemini 3 rejects replayed function calls without a thought signature; the
#: signature cannot survive the canonical form, so we send the sentinel Google
#: documents for histories built elsewhere.
SKIP_SIGNATURE = "skip_thought_signature_validator"

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}

_TOOL_CHOICE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

#: reasoning_effort -> thinkingBudget for Gemini 2.5 (the figures Google's own
#: OpenAI-compatible endpoint uses); Gemini 3 takes a level instead.
_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")


def _generation(model: str | None) -> int:
    m = _GEMINI_MAJOR.search(model or "")
    return int(m.group(1)) if m else 0


# --- requests ----------------------------------------------------------------


def chat_to_gemini(body: Json, model: str | None = None) -> Json:
    """A canonical chat body as a GenerateContentRequest (model goes in the URL)."""
    model = model or body.get("model")
    system, contents = _contents(body.get("messages") or [], _generation(model) >= 3)
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        config = _tool_config(body.get("tool_choice"))
        if config:
            out["toolConfig"] = config
    generation = _generation_config(body, model)
    if generation:
        out["generationConfig"] = generation
    return out


def _contents(messages: list[Any], sign_calls: bool) -> tuple[list[Json], list[Json]]:
    system: list[Json] = []
    contents: list[Json] = []
    names: dict[str, str] = {}  # tool call id -> function name, for functionResponse
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(m.get("content")))
            continue
        if role == "assistant":
            parts = _assistant_parts(m, names, sign_calls)
            gemini_role = "model"
        elif role in ("tool", "function"):
            parts = [_function_response(m, names)]
            gemini_role = "user"
        else:
            parts = _user_parts(m.get("content"))
            gemini_role = "user"
        if not parts:
            continue
        # Gemini wants the answers to parallel calls in one turn; merging
        # consecutive turns of a role also keeps user/model alternating.
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    return system, contents


def _text_parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        return [
            {"text": p["text"]}
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
        ]
    return []


def _user_parts(content: Any) -> list[Json]:
    if not isinstance(content, list):
        return _text_parts(content)
    parts: list[Json] = []
    for p in content:
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind == "text" and p.get("text"):
            parts.append({"text": p["text"]})
        elif kind == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                parts.append(_media_part(url, "image/jpeg"))
        elif kind == "input_audio" and isinstance(p.get("input_audio"), dict):
            audio = p["input_audio"]
            mime = "audio/" + str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data", "")}})
        elif kind == "file" and isinstance(p.get("file"), dict):
            data = p["file"].get("file_data")
            if isinstance(data, str):
                parts.append(_media_part(data, "application/pdf"))
    return parts


def _media_part(url: str, default_mime: str) -> Json:
    """data: URLs travel inline; anything else is a URI Gemini fetches itself."""
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";", 1)[0] or default_mime
        if ";base64" not in head:
            data = base64.b64encode(data.encode()).decode()
        return {"inlineData": {"mimeType": mime, "data": data}}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"fileData": {"mimeType": guessed or default_mime, "fileUri": url}}


def _assistant_parts(m: Json, names: dict[str, str], sign_calls: bool) -> list[Json]:
    parts = _text_parts(m.get("content"))
    signed = False
    for call in m.get("tool_calls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            continue
        fn = call["function"]
        name = str(fn.get("name") or "")
        if call.get("id"):
            names[str(call["id"])] = name
        args = tool_arguments(
            fn.get("arguments"), "tool call arguments are not valid JSON", detail=True
        )
        part: Json = {"functionCall": {"name": name, "args": args}}
        if sign_calls and not signed:
            # Only the first call of a turn carries a signature (parallel calls).
            part["thoughtSignature"] = SKIP_SIGNATURE
            signed = True
        parts.append(part)
    return parts


def _function_response(m: Json, names: dict[str, str]) -> Json:
    if m.get("role") == "function":
        name = str(m.get("name") or "")
    else:
        call_id = str(m.get("tool_call_id") or "")
        name = names.get(call_id) or str(m.get("name") or "")
        if not name:
            raise InvalidRequest(
                f"tool message answers call {call_id!r}, which no earlier assistant message made",
                param="messages",
            )
    content = m.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    response: Json
    try:
        parsed = loads(content) if isinstance(content, str) and content else None
    except ValueError:
        parsed = None
    # `response` must be an object: a JSON object goes as it is, anything else wrapped.
    response = parsed if isinstance(parsed, dict) else {"result": content}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(tools: Any) -> list[Json]:
    decls = []
    for t in tools or []:
        if not isinstance(t, dict) or t.get("type", "function") != "function":
            continue
        fn = t.get("function") or {}
        decl: Json = {"name": fn.get("name", "")}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if isinstance(params, dict) and params.get("properties"):
            decl["parameters"] = clean_schema(params)
        decls.append(decl)
    return [{"functionDeclarations": decls}] if decls else []


def _tool_config(choice: Any) -> Json | None:
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return {"functionCallingConfig": {"mode": _TOOL_CHOICE[choice]}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


_SIMPLE = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def _generation_config(body: Json, model: str | None) -> Json:
    config: Json = {}
    for ours, theirs in _SIMPLE:
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    thinking = _thinking(body, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt: Any) -> Json:
    if not isinstance(fmt, dict):
        return {}
    if fmt.get("type") == "json_object":
        return {"responseMimeType": "application/json"}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        out: Json = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            out["responseSchema"] = clean_schema(schema)
        return out
    return {}


def _thinking(body: Json, model: str | None) -> Json | None:
    effort = body.get("reasoning_effort")
    anthropic = body.get("thinking")  # carried over from an Anthropic-protocol client
    if isinstance(effort, str) and effort in _BUDGET:
        if _generation(model) >= 3:
            level = "LOW" if effort in ("none", "minimal", "low") else effort.upper()
            return {"thinkingLevel": level, "includeThoughts": True}
        return {"thinkingBudget": _BUDGET[effort], "includeThoughts": effort != "none"}
    if isinstance(anthropic, dict) and anthropic.get("type") == "enabled":
        budget = int(anthropic.get("budget_tokens") or -1)  # -1: Gemini decides
        return {"thinkingBudget": budget, "includeThoughts": True}
    return None


# --- answers -----------------------------------------------------------------


def gemini_usage(meta: Any) -> Json:
    """usageMetadata as an OpenAI usage object; thoughts count as completion tokens."""
    if not isinstance(meta, dict):
        meta = {}
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def finish_reason(reason: Any, has_calls: bool) -> str | None:
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if has_calls and reason == "STOP":
        return "tool_calls"
    return _FINISH.get(str(reason), "stop")


def call_id(response_id: str, candidate: int, position: int, call: Json) -> str:
    """Gemini's own id when it sends one, else one derived from the call: stable on replay."""
    if call.get("id"):
        return str(call["id"])
    seed = f"{response_id}:{candidate}:{position}:{call.get('name')}:{dumps(call.get('args'))!r}"
    return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _tool_call(response_id: str, candidate: int, position: int, call: Json) -> Json:
    return {
        "id": call_id(response_id, candidate, position, call),
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": dumps(call.get("args") or {}).decode(),
        },
    }


def _completion_id(resp: Json) -> str:
    rid = resp.get("responseId")
    if rid:
        return f"chatcmpl-{rid}"
    return "chatcmpl-" + hashlib.sha256(dumps(resp)).hexdigest()[:24]


def gemini_to_completion(resp: Json, model: str) -> Json:
    """A GenerateContentResponse as an OpenAI chat.completion."""
    rid = str(resp.get("responseId") or "")
    choices = [_choice(c, i, rid) for i, c in enumerate(resp.get("candidates") or [])]
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): no candidates.
        message = {"role": "assistant", "content": ""}
        choices = [{"index": 0, "message": message, "finish_reason": "content_filter"}]
    return {
        "id": _completion_id(resp),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": gemini_usage(resp.get("usageMetadata")),
    }


def _choice(cand: Json, position: int, rid: str) -> Json:
    index = int(cand.get("index") or position)
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    for part in (cand.get("content") or {}).get("parts") or []:
        if isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(rid, index, len(calls), part["functionCall"]))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    message: Json = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    reason = finish_reason(cand.get("finishReason"), bool(calls)) or "stop"
    return {"index": index, "message": message, "finish_reason": reason}


def raise_for_error(data: Json) -> None:
    """Google's error object, in a stream or a 200 body, as a typed error."""
    err = data.get("error")
    if err is None:
        return
    message = err.get("message") if isinstance(err, dict) else str(err)
    code = err.get("code") if isinstance(err, dict) else None
    text = f"upstream stream error: {message or 'unknown error'}"
    if isinstance(code, int) and 400 <= code < 600:
        raise UpstreamStatusError(text, status=code, body=dumps(data)[:4096])
    raise UpstreamUnavailable(text)


class StreamTranslator:
    """streamGenerateContent SSE events -> canonical chat.completion.chunk dicts."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self._usage_json: Json | None = None
        self._id: str | None = None
        self._created = int(time.time())
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate -> tool calls so far

    def feed(self, event: sse.Event) -> list[Json]:
        if not event.data or event.data == "[DONE]":
            return []
        data = loads(event.data)
        if isinstance(data, list):  # a JSON-array stream (no alt=sse) element
            data = data[0] if data else {}
        if not isinstance(data, dict):
            return []
        raise_for_error(data)
        if self._id is None:
            self._id = _completion_id(data)
        if data.get("usageMetadata"):
            self._usage_json = gemini_usage(data["usageMetadata"])
            self.usage = usage_from_openai(self._usage_json)
        out: list[Json] = []
        candidates = data.get("candidates") or []
        for position, cand in enumerate(candidates):
            out.extend(self._candidate(cand, position, str(data.get("responseId") or "")))
        block = (data.get("promptFeedback") or {}).get("blockReason")
        if not candidates and block:
            out.extend(self._start(0))
            out.append(self._chunk(0, {}, "content_filter"))
        return out

    def close(self) -> list[Json]:
        if self._usage_json is None:
            return []
        chunk = self._base()
        chunk["choices"] = []
        chunk["usage"] = self._usage_json
        return [chunk]

    def _candidate(self, cand: Json, position: int, rid: str) -> list[Json]:
        index = int(cand.get("index") or position)
        out = self._start(index)
        for part in (cand.get("content") or {}).get("parts") or []:
            delta = self._delta(part, index, rid)
            if delta:
                out.append(self._chunk(index, delta))
        reason = finish_reason(cand.get("finishReason"), self._calls.get(index, 0) > 0)
        if reason:
            out.append(self._chunk(index, {}, reason))
        return out

    def _delta(self, part: Json, index: int, rid: str) -> Json | None:
        call = part.get("functionCall")
        if isinstance(call, dict):
            position = self._calls.get(index, 0)
            self._calls[index] = position + 1
            # Gemini sends each call whole, so one delta carries name and arguments.
            return {"tool_calls": [{"index": position, **_tool_call(rid, index, position, call)}]}
        text = part.get("text")
        if not isinstance(text, str) or not text:
            return None
        return {"reasoning_content": text} if part.get("thought") else {"content": text}

    def _start(self, index: int) -> list[Json]:
        if index in self._started:
            return []
        self._started.add(index)
        return [self._chunk(index, {"role": "assistant", "content": ""})]

    def _base(self) -> Json:
        return {
            "id": self._id or "chatcmpl-gemini",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
        }

    def _chunk(self, index: int, delta: Json, finish: str | None = None) -> Json:
        chunk = self._base()
        chunk["choices"] = [{"index": index, "delta": delta, "finish_reason": finish}]
        return chunk
