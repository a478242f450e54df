"""Gemini streams and embeddings <-> the canonical (OpenAI) forms, on Google's shapes."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from aicp.errors import InvalidRequest, UpstreamStatusError
from aicp.protocol import sse
from aicp.protocol.gemini import (
    StreamTranslator,
)
from aicp.protocol.gemini_embed import (
    embeddings_to_gemini,
    embeddings_to_vertex,
    gemini_to_embeddings,
    vertex_to_embeddings,
)

# --- streams -----------------------------------------------------------------


def _events(*payloads: Any) -> list[sse.Event]:
    raw = b"".join(b"data: " + orjson.dumps(p) + b"\r\n\r\n" for p in payloads)
    decoder = sse.Decoder()
    return [*decoder.feed(raw), *decoder.flush()]


def _run(translator: StreamTranslator, events: list[sse.Event]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        out.extend(translator.feed(event))
    return out + translator.close()


def test_a_text_stream_becomes_role_deltas_finish_and_usage() -> None:
    events = _events(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
            "responseId": "s1",
        },
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "lo"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": 2,
                "cachedContentTokenCount": 1,
            },
            "responseId": "s1",
        },
    )
    t = StreamTranslator("gemini-2.5-flash")
    chunks = _run(t, events)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 6
    assert all(c["id"] == "chatcmpl-s1" and c["object"] == "chat.completion.chunk" for c in chunks)
    assert (t.usage.prompt_tokens, t.usage.completion_tokens, t.usage.cached_tokens) == (4, 2, 1)


def test_streamed_function_calls_and_thoughts_become_deltas() -> None:
    events = _events(
        {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"functionCall": {"name": "a", "args": {"x": 1}}},
                            {"functionCall": {"name": "b", "args": {}}},
                        ]
                    },
                    "finishReason": "STOP",
                }
            ]
        },
    )
    chunks = _run(StreamTranslator("m"), events)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {"reasoning_content": "hmm"}
    first, second = deltas[2]["tool_calls"][0], deltas[3]["tool_calls"][0]
    assert (first["index"], first["function"]) == (0, {"name": "a", "arguments": '{"x":1}'})
    assert (second["index"], second["function"]["name"]) == (1, "b")
    assert first["id"].startswith("call_") and first["type"] == "function"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_an_error_event_in_the_stream_raises_a_typed_error() -> None:
    events = _events({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    with pytest.raises(UpstreamStatusError, match="overloaded") as info:
        _run(StreamTranslator("m"), events)
    assert info.value.status == 503


def test_a_stream_without_usage_ends_without_a_usage_chunk() -> None:
    events = _events(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
    )
    chunks = _run(StreamTranslator("m"), events)
    assert all(c["choices"] for c in chunks)


# --- embeddings --------------------------------------------------------------


def test_embeddings_requests_become_batch_embed_contents() -> None:
    body = {"model": "x", "input": ["a", "b"], "dimensions": 4}
    assert embeddings_to_gemini(body, "text-embedding-004") == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "a"}]},
                "outputDimensionality": 4,
            },
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 4,
            },
        ]
    }
    assert embeddings_to_vertex({"input": "a"}) == {"instances": [{"content": "a"}]}


def test_embeddings_answers_become_openai_lists_in_either_encoding() -> None:
    resp = {"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}
    out = gemini_to_embeddings(resp, {"input": ["a", "b"]}, "e")
    assert out["object"] == "list" and out["model"] == "e"
    assert [d["embedding"] for d in out["data"]] == [[0.5, -1.0], [0.25, 2.0]]
    assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] > 0
    packed = gemini_to_embeddings(resp, {"input": ["a", "b"], "encoding_format": "base64"}, "e")
    raw = base64.b64decode(packed["data"][1]["embedding"])
    assert struct.unpack("<2f", raw) == (0.25, 2.0)


def test_vertex_predictions_become_openai_embeddings_with_token_counts() -> None:
    resp = {"predictions": [{"embeddings": {"values": [1.0], "statistics": {"token_count": 3}}}]}
    out = vertex_to_embeddings(resp, {"input": "a"}, "text-embedding-005")
    assert out["data"][0]["embedding"] == [1.0]
    assert out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_token_array_inputs_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        embeddings_to_gemini({"input": [[1, 2, 3]]}, "e")
