"""Canonical chat <-> Bedrock Converse, with shapes from the Bedrock Runtime API reference."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from aicp.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from aicp.protocol.bedrock import (
    StreamTranslator,
    chat_to_converse,
    converse_to_completion,
    stream_exception,
)
from aicp.providers.aws import EventStreamDecoder
from aicp.testing import eventstream
from aicp.testing.fake_bedrock import split_writes

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n not really an image").decode()

# --- requests -------------------------------------------------------------------


def test_system_and_developer_messages_become_system_blocks() -> None:
    out = chat_to_converse(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "no jokes"}]},
                {"role": "user", "content": "hi"},
            ]
        }
    )
    assert out["system"] == [{"text": "be brief"}, {"text": "no jokes"}]
    assert out["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_inference_config_maps_openai_sampling_fields() -> None:
    out = chat_to_converse(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
        }
    )
    assert out["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    out = chat_to_converse(
        {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 5}
    )
    assert out["inferenceConfig"] == {"maxTokens": 5}


def test_data_url_image_becomes_image_block_with_bytes_and_format() -> None:
    out = chat_to_converse(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
                    ],
                }
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        {"text": "what is this?"},
        {"image": {"format": "jpeg", "source": {"bytes": PNG}}},
    ]


def test_http_image_url_is_a_clear_invalid_request() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
            }
        ]
    }
    with pytest.raises(InvalidRequest, match="data: URLs"):
        chat_to_converse(body)


def test_tool_calls_and_consecutive_tool_results_alternate_roles() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "t2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "rain"}]},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "required",
    }
    out = chat_to_converse(body)
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "t2", "name": "weather", "input": {"city": "Rome"}}},
    ]
    assert out["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "rain"}]}},
        {"text": "thanks"},
    ]
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "weather",
                    "description": "current weather",
                    "inputSchema": {
                        "json": {"type": "object", "properties": {"city": {"type": "string"}}}
                    },
                }
            }
        ],
        "toolChoice": {"any": {}},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "f"}}, {"tool": {"name": "f"}}),
    ],
)
def test_tool_choice_maps_to_converse(choice: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = chat_to_converse(
        {"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice}
    )
    assert out["toolConfig"]["toolChoice"] == expected
    assert out["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"] == "object"


def test_tool_choice_none_without_history_leaves_tools_out() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = chat_to_converse(
        {"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": "none"}
    )
    assert "toolConfig" not in out


def test_reasoning_effort_becomes_claude_thinking_budget() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"}
    out = chat_to_converse(body, "anthropic.claude-3-7-sonnet-20250219-v1:0")
    thinking = out["additionalModelRequestFields"]["thinking"]
    assert thinking["type"] == "enabled" and thinking["budget_tokens"] > 0
    out = chat_to_converse(body, "openai.gpt-oss-120b-1:0")
    assert out["additionalModelRequestFields"] == {"reasoning_effort": "low"}


def test_signed_thinking_blocks_are_replayed_as_reasoning_content() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": "answer",
                "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
            },
            {"role": "user", "content": "y"},
        ]
    }
    out = chat_to_converse(body)
    assert out["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"text": "answer"},
    ]


def test_cache_control_adds_a_cache_point_after_the_block() -> None:
    body = {
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": "x"},
        ]
    }
    assert chat_to_converse(body)["system"] == [
        {"text": "long"},
        {"cachePoint": {"type": "default"}},
    ]


def test_n_greater_than_one_is_rejected() -> None:
    with pytest.raises(InvalidRequest):
        chat_to_converse({"messages": [{"role": "user", "content": "x"}], "n": 2})


# --- responses ------------------------------------------------------------------


def test_text_response_and_cache_usage() -> None:
    resp = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 35,
            "cacheReadInputTokens": 12,
            "cacheWriteInputTokens": 8,
        },
        "metrics": {"latencyMs": 100},
    }
    out = converse_to_completion(resp, "m")
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello"}
    assert choice["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 5,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 12},
        "cache_creation_input_tokens": 8,
    }
    assert out["object"] == "chat.completion" and out["model"] == "m"


def test_tool_use_and_reasoning_response() -> None:
    resp = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "think", "signature": "s1"}}},
                    {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
    }
    out = converse_to_completion(resp, "m")
    message = out["choices"][0]["message"]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert message["reasoning_content"] == "think"
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "think", "signature": "s1"}
    ]
    assert message["tool_calls"] == [
        {
            "id": "tu1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
        }
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(reason: str, finish: str) -> None:
    resp = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": reason}
    assert converse_to_completion(resp, "m")["choices"][0]["finish_reason"] == finish


# --- stream events --------------------------------------------------------------


def _deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_stream_text_then_finish_then_usage_only_chunk() -> None:
    t = StreamTranslator("m")
    chunks: list[dict[str, Any]] = []
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}, "p": "abc"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "max_tokens"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
    for name, payload in events:
        chunks.extend(t.feed(name, payload))
    chunks.extend(t.close())
    assert _deltas(chunks)[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in _deltas(chunks)) == "Hello"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 6
    assert t.usage.prompt_tokens == 4 and t.usage.completion_tokens == 2
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_stream_tool_use_and_reasoning_deltas() -> None:
    t = StreamTranslator("m")
    out: list[dict[str, Any]] = []
    out += t.feed("messageStart", {"role": "assistant"})
    out += t.feed(
        "contentBlockDelta",
        {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "plan"}}},
    )
    out += t.feed(
        "contentBlockStart",
        {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "weather"}}},
    )
    out += t.feed(
        "contentBlockDelta",
        {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city":'}}},
    )
    out += t.feed(
        "contentBlockDelta",
        {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ' "Oslo"}'}}},
    )
    out += t.feed("messageStop", {"stopReason": "tool_use"})
    deltas = _deltas(out)
    assert deltas[1] == {"reasoning_content": "plan"}
    assert deltas[2]["tool_calls"][0] == {
        "index": 0,
        "id": "tu1",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
    }
    args = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:5])
    assert args == '{"city": "Oslo"}'
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_ending_without_message_stop_is_an_error() -> None:
    t = StreamTranslator("m")
    t.feed("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamUnavailable):
        t.close()


def test_stream_exceptions_become_upstream_errors_with_bedrock_statuses() -> None:
    err = stream_exception("throttlingException", b'{"message": "slow down"}')
    assert isinstance(err, UpstreamStatusError)
    assert err.status == 429 and err.retryable and "slow down" in err.message
    err = stream_exception("modelStreamErrorException", b'{"message": "boom"}')
    assert err.status == 424 and not err.retryable


# --- the event-stream framing -----------------------------------------------------


def test_encoder_output_decodes_with_botocore_and_checks_crcs() -> None:
    raw = eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "é"}})
    buf = EventStreamBuffer()
    buf.add_data(raw)
    (message,) = list(buf)
    assert message.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == '{"contentBlockIndex":0,"delta":{"text":"é"}}'.encode()
    total, headers_len = struct.unpack("!II", raw[:8])
    assert total == len(raw) and headers_len == len(eventstream.encode_headers(message.headers))


def test_botocore_rejects_a_corrupted_message() -> None:
    raw = bytearray(eventstream.event("messageStart", {"role": "assistant"}))
    raw[-6] ^= 0xFF  # flip a payload byte: the message CRC no longer matches
    buf = EventStreamBuffer()
    buf.add_data(bytes(raw))
    with pytest.raises(ChecksumMismatch):
        list(buf)


def test_decoder_reassembles_messages_split_across_chunks() -> None:
    messages = [
        eventstream.event("messageStart", {"role": "assistant"}),
        eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        eventstream.exception("throttlingException", "too many"),
    ]
    data = b"".join(messages)
    boundaries = {sum(len(m) for m in messages[:k]) for k in range(len(messages) + 1)}
    decoder = EventStreamDecoder("test")
    seen = []
    # One byte at a time is the worst case: every message straddles many chunks.
    for i in range(len(data)):
        seen.extend(decoder.feed(data[i : i + 1]))
        assert decoder.pending == (i + 1 not in boundaries)
    assert [m.headers.get(":event-type") or m.headers[":exception-type"] for m in seen] == [
        "messageStart",
        "contentBlockDelta",
        "throttlingException",
    ]
    assert seen[2].headers[":message-type"] == "exception"


def test_fake_upstream_writes_straddle_message_boundaries() -> None:
    messages = [eventstream.event("messageStart", {"role": "assistant"}) for _ in range(4)]
    pieces = split_writes(messages)
    assert b"".join(pieces) == b"".join(messages)
    boundaries = {sum(len(m) for m in messages[:k]) for k in range(len(messages) + 1)}
    ends = {sum(len(p) for p in pieces[: k + 1]) for k in range(len(pieces))}
    assert ends - boundaries, "some write must end inside a message"


def test_decoder_reports_a_corrupt_stream_as_upstream_unavailable() -> None:
    raw = bytearray(eventstream.event("messageStart", {"role": "assistant"}))
    raw[9] ^= 0xFF  # the prelude CRC
    decoder = EventStreamDecoder("test")
    with pytest.raises(UpstreamUnavailable, match="corrupt"):
        list(decoder.feed(bytes(raw)))


def test_pdf_file_part_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "Q3 report!.pdf"},
    }
    out = chat_to_converse({"messages": [{"role": "user", "content": [part]}]})
    assert out["messages"][0]["content"] == [
        {"document": {"format": "pdf", "name": "Q3 report-", "source": {"bytes": "JVBERi0="}}}
    ]


def test_stream_reasoning_signature_becomes_a_thinking_block() -> None:
    t = StreamTranslator("m")
    payload = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}
    (chunk,) = t.feed("contentBlockDelta", payload)
    assert chunk["choices"][0]["delta"] == {
        "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]
    }
