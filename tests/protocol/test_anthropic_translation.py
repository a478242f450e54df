"""Anthropic <-> canonical OpenAI translation of requests (responses and streams: sibling files).

Shapes follow the Anthropic Messages and OpenAI Chat Completions references.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aicp.errors import InvalidRequest
from aicp.protocol.anthropic import (
    DEFAULT_MAX_TOKENS,
    chat_to_messages,
    messages_to_chat,
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
