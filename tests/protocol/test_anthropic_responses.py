"""Anthropic responses: messages <-> chat completions, stop reasons, usage.

Shapes follow the Anthropic Messages and OpenAI Chat Completions references.
"""

from __future__ import annotations

from typing import Any

import pytest

from aicp.protocol.anthropic import (
    completion_to_message,
    message_to_completion,
)

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
