"""Anthropic streams: canonical chunks <-> Anthropic SSE events.

Shapes follow the Anthropic Messages and OpenAI Chat Completions references.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aicp.errors import UpstreamStatusError, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.anthropic import (
    EventTranslator,
    StreamEncoder,
)
from aicp.testing import FakeUpstream
from aicp.testing.fake_anthropic import build_message, encode_event, stream_events

Json = dict[str, Any]

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQ="
EPHEMERAL = {"type": "ephemeral"}
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER["input_schema"],
    },
}

# A request using most of the Messages API, in Anthropic's documented shapes.
RICH_REQUEST: Json = {
    "model": "claude-x",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    "cache_control": EPHEMERAL,
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look first.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking the weather."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "service down",
                    "is_error": True,
                },
                {"type": "text", "text": "And now?"},
            ],
        },
    ],
    "tools": [{**WEATHER, "cache_control": EPHEMERAL}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "user-1"},
}


# --- streams: canonical chunks -> Anthropic SSE ---------------------------------


def _chunk(delta: Json | None = None, finish: str | None = None, **extra: Any) -> Json:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "choices": choices, **extra}


def _events(raw: bytes) -> list[tuple[str | None, Json]]:
    decoder = sse.Decoder()
    return [(e.event, json.loads(e.data)) for e in [*decoder.feed(raw), *decoder.flush()]]


def _encode(chunks: list[Json], request: Json | None = None) -> list[tuple[str | None, Json]]:
    encoder = StreamEncoder(
        request or {"model": "alias", "messages": [{"role": "user", "content": "hi"}]}
    )
    raw = b"".join(encoder.feed(c) for c in chunks) + encoder.close()
    events = _events(raw)
    for name, data in events:
        assert name == data["type"]  # the SSE event name repeats the payload type
    return events


USAGE_CHUNK = {
    "prompt_tokens": 13,
    "completion_tokens": 4,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 5},
}


def test_text_stream_has_anthropics_event_sequence() -> None:
    events = _encode(
        [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "Hel"}),
            _chunk({"content": "lo"}),
            _chunk({}, "stop"),
            _chunk(None, usage=USAGE_CHUNK),
        ]
    )
    assert [n for n, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_chatcmpl-9" and start["model"] == "alias"
    assert start["role"] == "assistant" and start["content"] == []
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Hel"}
    delta = events[6][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    # The usage chunk came after the finish reason and still made it into message_delta.
    assert delta["usage"] == {
        "input_tokens": 8,
        "output_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
    }


def test_stream_without_usage_still_closes_properly() -> None:
    events = _encode([_chunk({"content": "Hello world!"}), _chunk({}, "length")])
    names = [n for n, _ in events]
    assert names[-2:] == ["message_delta", "message_stop"]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == 3  # estimated from 12 streamed characters


def test_empty_stream_is_still_a_valid_message() -> None:
    events = _encode([])
    assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]


def test_tool_call_deltas_split_over_chunks() -> None:
    events = _encode(
        [
            _chunk({"role": "assistant", "content": "Let me look."}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        }
                    ]
                }
            ),
            _chunk({}, "tool_calls"),
        ]
    )
    starts = [d for n, d in events if n == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "f",
        "input": {},
    }
    assert [s["index"] for s in starts] == [0, 1, 2]
    pieces = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["index"] == 1
    ]
    assert json.loads("".join(pieces)) == {"city": "Oslo"}
    assert len(pieces) == 2
    # Every block is closed before the next opens.
    order = [
        (n, d.get("index"))
        for n, d in events
        if n.startswith("content_block_") and n != "content_block_delta"
    ]
    assert order == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_reasoning_and_signature_stream_as_a_thinking_block() -> None:
    events = _encode(
        [
            _chunk({"reasoning_content": "Let me "}),
            _chunk({"reasoning_content": "think."}),
            _chunk(
                {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig-5"}]}
            ),
            _chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "opaque"}]}),
            _chunk({"content": "Done."}),
            _chunk({}, "stop"),
        ]
    )
    body = [(n, d) for n, d in events if n.startswith("content_block")]
    assert body[0][1]["content_block"]["type"] == "thinking"
    deltas = [d["delta"] for n, d in body if n == "content_block_delta" and d["index"] == 0]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Let me "},
        {"type": "thinking_delta", "thinking": "think."},
        {"type": "signature_delta", "signature": "sig-5"},
    ]
    starts = [d["content_block"] for n, d in body if n == "content_block_start"]
    assert starts[1] == {"type": "redacted_thinking", "data": "opaque"}
    assert starts[2] == {"type": "text", "text": ""}


# --- streams: Anthropic SSE -> canonical chunks ---------------------------------


def _translate(events: list[Json]) -> tuple[list[Json], EventTranslator]:
    translator = EventTranslator("claude-x")
    decoder = sse.Decoder()
    raw = b"".join(encode_event(e) for e in events)
    chunks: list[Json] = []
    # Feed in awkward 7-byte pieces: events must survive being split anywhere.
    for i in range(0, len(raw), 7):
        for event in decoder.feed(raw[i : i + 7]):
            chunks.extend(translator.feed(event))
    chunks.extend(translator.close())
    return chunks, translator


def _fake_message(body: Json) -> Json:
    return build_message({"model": "claude-x", "max_tokens": 100, **body}, FakeUpstream())


def test_anthropic_text_stream_becomes_chunks_with_usage() -> None:
    chunks, translator = _translate(stream_events(_fake_message({"messages": []})))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == FakeUpstream().reply
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    # message_start had input and cache counts; message_delta only output: both kept.
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 3}
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (11, 7)
    assert translator.usage.cache_creation_tokens == 2
    assert all(c["id"].startswith("msg_fake_") and c["model"] == "claude-x" for c in chunks)


def test_anthropic_tool_and_thinking_stream_becomes_chunks() -> None:
    message = _fake_message(
        {"messages": [], "tools": [WEATHER], "thinking": {"type": "enabled", "budget_tokens": 1024}}
    )
    chunks, _ = _translate(stream_events(message))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert reasoning == message["content"][0]["thinking"]
    signatures = [tb["signature"] for d in deltas for tb in d.get("thinking_blocks") or []]
    assert signatures == [message["content"][0]["signature"]]
    calls = [tc for d in deltas for tc in d.get("tool_calls") or []]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_fake_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == message["content"][2]["input"]
    assert len(calls) > 2  # streamed in pieces
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


def test_translated_then_encoded_stream_rebuilds_the_same_message() -> None:
    message = _fake_message(
        {"messages": [], "tools": [WEATHER], "thinking": {"type": "enabled", "budget_tokens": 1024}}
    )
    chunks, _ = _translate(stream_events(message))
    events = _encode(chunks)
    rebuilt: list[Json] = []
    for name, data in events:
        if name == "content_block_start":
            rebuilt.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = rebuilt[data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["_json"] = block.get("_json", "") + delta["partial_json"]
    for block in rebuilt:
        if block["type"] == "tool_use":
            block["input"] = json.loads(block.pop("_json"))
    assert rebuilt == message["content"]
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["cache_read_input_tokens"] == 3
    assert final["usage"]["input_tokens"] == 6


def test_error_event_raises_a_typed_upstream_error() -> None:
    translator = EventTranslator()
    event = sse.Event(
        "error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    )
    with pytest.raises(UpstreamStatusError) as info:
        translator.feed(event)
    assert info.value.status == 529
    assert info.value.kind == "overloaded_error"
    assert "Overloaded" in info.value.message


def test_stream_that_ends_before_message_stop_is_an_error() -> None:
    events = stream_events(_fake_message({"messages": []}))[:-2]
    with pytest.raises(UpstreamUnavailable):
        _translate(events)


def test_ping_and_unknown_events_are_ignored() -> None:
    translator = EventTranslator()
    assert translator.feed(sse.Event("ping", '{"type": "ping"}')) == []
    assert translator.feed(sse.Event("future_event", '{"type": "future_event"}')) == []
