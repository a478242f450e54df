"""Anthropic <-> canonical OpenAI translation: requests, responses and streams.

Shapes follow the Anthropic Messages and OpenAI Chat Completions references.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aicp.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.anthropic import (
    DEFAULT_MAX_TOKENS,
    EventTranslator,
    StreamEncoder,
    chat_to_messages,
    completion_to_message,
    message_to_completion,
    messages_to_chat,
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


# --- requests: Anthropic -> OpenAI ----------------------------------------------


def test_anthropic_request_becomes_openai_chat() -> None:
    chat = messages_to_chat(RICH_REQUEST)
    assert chat["model"] == "claude-x"
    assert chat["max_tokens"] == 1024
    assert chat["stop"] == ["END"]
    assert (chat["temperature"], chat["top_p"], chat["top_k"]) == (0.5, 0.9, 40)
    assert chat["user"] == "user-1"
    assert chat["parallel_tool_calls"] is False
    assert chat["tool_choice"] == "auto"
    assert chat["tools"] == [{**OPENAI_WEATHER, "cache_control": EPHEMERAL}]
    system, user, assistant, tool1, tool2, user2 = chat["messages"]
    assert system == {
        "role": "system",
        "content": [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}],
    }
    assert user["content"] == [
        {"type": "text", "text": "What is in this picture?"},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG}"},
            "cache_control": EPHEMERAL,
        },
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
    ]
    assert assistant["content"] == "Checking the weather."
    assert assistant["reasoning_content"] == "Look first."
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Look first.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    assert [c["id"] for c in assistant["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert tool1 == {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"}
    assert tool2 == {
        "role": "tool",
        "tool_call_id": "toolu_2",
        "content": "service down",
        "is_error": True,
    }
    assert user2 == {"role": "user", "content": [{"type": "text", "text": "And now?"}]}


def test_anthropic_round_trip_through_the_canonical_form_keeps_the_request() -> None:
    back = chat_to_messages(messages_to_chat(RICH_REQUEST))
    expected = json.loads(json.dumps(RICH_REQUEST))
    # The single text block of the last turn comes back as Anthropic's string shorthand
    # only when alone; here it sits beside tool results, so the blocks return unchanged.
    assert back == expected


def test_system_string_and_plain_blocks() -> None:
    chat = messages_to_chat(
        {
            "model": "m",
            "max_tokens": 5,
            "system": "Be kind.",
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert chat["messages"][0] == {"role": "system", "content": "Be kind."}
    blocks = [{"type": "text", "text": "A."}, {"type": "text", "text": "B."}]
    chat = messages_to_chat({"model": "m", "max_tokens": 5, "system": blocks, "messages": []})
    assert chat["messages"] == [{"role": "system", "content": "A.\n\nB."}]


def test_anthropic_documents_become_file_parts() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "report.pdf",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": "plain words",
                        },
                    },
                ],
            }
        ],
    }
    parts = messages_to_chat(body)["messages"][0]["content"]
    assert parts == [
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"},
        },
        {"type": "text", "text": "plain words"},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_to_openai(choice: Json, expected: Any) -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [],
        "tools": [WEATHER],
        "tool_choice": choice,
    }
    assert messages_to_chat(body)["tool_choice"] == expected


def test_streaming_anthropic_request_asks_for_usage() -> None:
    chat = messages_to_chat({"model": "m", "max_tokens": 5, "stream": True, "messages": []})
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


def test_thinking_parameter_is_kept() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2000}
    chat = messages_to_chat(
        {"model": "m", "max_tokens": 4000, "thinking": thinking, "messages": []}
    )
    assert chat["thinking"] == thinking


def test_tool_result_with_blocks() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [
            {"type": "text", "text": "chart:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    }
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [result]}]}
    (tool,) = messages_to_chat(body)["messages"]
    assert tool["role"] == "tool"
    assert tool["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }


# --- requests: OpenAI -> Anthropic ----------------------------------------------


def test_openai_request_becomes_anthropic_messages() -> None:
    body = {
        "model": "claude-x",
        "messages": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "text", "text": "Rule two."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/b.png", "detail": "low"},
                    },
                    {
                        "type": "file",
                        "file": {
                            "filename": "a.pdf",
                            "file_data": f"data:application/pdf;base64,{PDF}",
                        },
                    },
                ],
            },
        ],
        "max_completion_tokens": 300,
        "max_tokens": 100,
        "stop": "STOP",
        "temperature": 1.7,
        "top_p": 0.8,
        "user": "u-9",
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 3,
        "presence_penalty": 0.1,
    }
    out = chat_to_messages(body)
    assert out == {
        "model": "claude-x",
        "max_tokens": 300,
        "system": "Rule one.\n\nRule two.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/b.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "a.pdf",
                    },
                ],
            }
        ],
        "stop_sequences": ["STOP"],
        "temperature": 1.0,
        "top_p": 0.8,
        "stream": True,
        "metadata": {"user_id": "u-9"},
    }


def test_missing_max_tokens_gets_the_default() -> None:
    out = chat_to_messages({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert out["messages"] == [{"role": "user", "content": "hi"}]


def test_system_with_cache_control_stays_blocks() -> None:
    part = {"type": "text", "text": "Long context", "cache_control": EPHEMERAL}
    out = chat_to_messages({"model": "m", "messages": [{"role": "system", "content": [part]}]})
    assert out["system"] == [part]


def test_tool_calls_and_results_become_blocks_in_alternating_turns() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "w", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "-3C"},
            {"role": "tool", "tool_call_id": "c2", "content": "down", "is_error": True},
            {"role": "user", "content": "so?"},
        ],
    }
    messages = chat_to_messages(body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "c2", "name": "w", "input": {}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "-3C"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "down", "is_error": True},
        {"type": "text", "text": "so?"},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_to_anthropic(choice: Any, parallel: bool | None, expected: Json) -> None:
    body: Json = {"model": "m", "messages": [], "tools": [OPENAI_WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    out = chat_to_messages(body)
    assert out["tools"] == [WEATHER]
    assert out["tool_choice"] == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    out = chat_to_messages({"model": "m", "messages": [], "tool_choice": "auto"})
    assert "tool_choice" not in out and "tools" not in out


@pytest.mark.parametrize(("effort", "budget"), [("low", 2048), ("medium", 8192), ("high", 16384)])
def test_reasoning_effort_becomes_a_thinking_budget(effort: str, budget: int) -> None:
    out = chat_to_messages(
        {"model": "m", "messages": [], "reasoning_effort": effort, "temperature": 0.2, "top_k": 3}
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] > budget  # Anthropic requires budget_tokens < max_tokens
    assert "temperature" not in out and "top_k" not in out


def test_explicit_thinking_wins_over_reasoning_effort() -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    out = chat_to_messages(
        {
            "model": "m",
            "messages": [],
            "thinking": thinking,
            "reasoning_effort": "high",
            "max_tokens": 5000,
        }
    )
    assert out["thinking"] == thinking and out["max_tokens"] == 5000


def test_thinking_blocks_go_back_first_with_signatures() -> None:
    message = {
        "role": "assistant",
        "content": "Answer.",
        "reasoning_content": "Hmm.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"},
        ],
    }
    out = chat_to_messages({"model": "m", "messages": [{"role": "user", "content": "q"}, message]})
    assert out["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "xx"},
        {"type": "text", "text": "Answer."},
    ]


def test_empty_text_parts_are_dropped() -> None:
    out = chat_to_messages(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}],
                }
            ],
        }
    )
    assert out["messages"] == [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "n": 2, "messages": []},
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
        },
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "function": {"name": "f", "arguments": "{not json"}}
                    ],
                }
            ],
        },
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}
            ],
        },
    ],
    ids=["n>1", "audio", "bad-arguments", "file-id"],
)
def test_untranslatable_requests_are_refused(body: Json) -> None:
    with pytest.raises(InvalidRequest):
        chat_to_messages(body)


# --- responses -----------------------------------------------------------------

ANTHROPIC_MESSAGE: Json = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "Plan.", "signature": "sig-9"},
        {"type": "text", "text": "Here "},
        {"type": "text", "text": "you go."},
        {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 30,
    },
}


def test_anthropic_message_becomes_a_chat_completion() -> None:
    data = message_to_completion(ANTHROPIC_MESSAGE, "claude-x")
    assert data["object"] == "chat.completion"
    assert data["model"] == "claude-x"
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Here you go."
    assert message["reasoning_content"] == "Plan."
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Plan.", "signature": "sig-9"}
    ]
    assert message["tool_calls"] == [
        {
            "id": "toolu_7",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    # OpenAI counts cached prompt tokens inside prompt_tokens.
    assert data["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 30,
        "total_tokens": 160,
        "prompt_tokens_details": {"cached_tokens": 100},
        "cache_creation_input_tokens": 20,
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_to_finish_reasons(stop: str, finish: str) -> None:
    msg = {**ANTHROPIC_MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    assert message_to_completion(msg, "m")["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reasons_to_stop_reasons(finish: str, stop: str) -> None:
    data = {"id": "x", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert completion_to_message(data, "m")["stop_reason"] == stop


def test_chat_completion_becomes_an_anthropic_message() -> None:
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sure.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 130,
            "completion_tokens": 30,
            "total_tokens": 160,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_creation_input_tokens": 20,
        },
    }
    msg = completion_to_message(data, "alias")
    assert msg == {
        "id": "msg_chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "alias",
        "content": [
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        # Anthropic's input_tokens exclude cache reads and writes.
        "usage": {
            "input_tokens": 10,
            "output_tokens": 30,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 100,
        },
    }


def test_response_round_trip_keeps_thinking_signatures() -> None:
    back = completion_to_message(message_to_completion(ANTHROPIC_MESSAGE, "claude-x"), "claude-x")
    merged_text = {"type": "text", "text": "Here you go."}
    content = ANTHROPIC_MESSAGE["content"]
    assert back["content"] == [content[0], merged_text, content[3]]
    assert back["usage"] == ANTHROPIC_MESSAGE["usage"] | {"output_tokens": 30}
    assert back["stop_reason"] == "tool_use"


def test_reasoning_without_blocks_becomes_unsigned_thinking() -> None:
    data = {
        "id": "x",
        "choices": [
            {"message": {"content": "A", "reasoning_content": "R"}, "finish_reason": "stop"}
        ],
    }
    assert completion_to_message(data, "m")["content"][0] == {
        "type": "thinking",
        "thinking": "R",
        "signature": "",
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
