"""/v1/messages end to end: the official SDKs against a real gateway on loopback.

The mock provider exercises the translation path (Anthropic client, OpenAI-native
provider); the fake Anthropic upstream exercises pass-through (Anthropic client)
and translation the other way (OpenAI client).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.protocol.tokens import estimate_request_tokens
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.fake_anthropic import (
    THINKING_SIGNATURE,
    THINKING_TEXT,
    TOOL_INPUT,
    TOOL_PREAMBLE,
    count_input_tokens,
)
from tests.helpers import make_settings, stream_hi

UPSTREAM_KEY = "sk-ant-upstream-secret"
CLIENT_KEY = "sk-ant-client-key"
CLAUDE = "claude/claude-upstream"
MOCK = "mock/mock-1"
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
OPENAI_WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": WEATHER_TOOL["name"],
        "description": WEATHER_TOOL["description"],
        "parameters": WEATHER_TOOL["input_schema"],
    },
}


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "providers": {
                "claude": {
                    "type": "anthropic",
                    "base_url": upstream.url,
                    "api_key": UPSTREAM_KEY,
                    "models": ["claude-upstream"],
                }
            },
            "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        }
    )
    with GatewayServer(settings) as server:
        yield server


@pytest.fixture
def claude(gw: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0, timeout=10)


@pytest.fixture
def oai(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=10)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- (a) Anthropic SDK -> gateway -> mock provider (translation) ---------------


def test_mock_answers_an_anthropic_client(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model=MOCK, max_tokens=100, messages=_user("hello there"))
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == MOCK
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Mock reply to: hello there"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


def test_system_prompt_reaches_the_mock(claude: anthropic.Anthropic) -> None:
    plain = claude.messages.create(model=MOCK, max_tokens=100, messages=_user("hi"))
    system = "You are a terse assistant. " * 20
    prompted = claude.messages.create(
        model=MOCK, max_tokens=100, system=system, messages=_user("hi")
    )
    # The mock counts the canonical messages, so a translated system prompt adds tokens.
    assert prompted.usage.input_tokens >= plain.usage.input_tokens + len(system) // 4 - 2


def test_mock_stream_builds_the_final_message(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MOCK, max_tokens=100, system="Be brief.", messages=_user("stream me")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Mock reply to: stream me"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


def test_mock_calls_a_tool_for_an_anthropic_client(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(
        model=MOCK,
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=_user("weather in Paris?"),
    )
    assert msg.stop_reason == "tool_use"
    block = msg.content[-1]
    assert block.type == "tool_use"
    assert block.name == "get_weather" and block.input == {}
    assert block.id.startswith("call_")


def test_mock_streams_a_tool_call(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MOCK, max_tokens=100, tools=[WEATHER_TOOL], messages=_user("weather?")
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool = [b for b in final.content if b.type == "tool_use"]
    assert len(tool) == 1 and tool[0].name == "get_weather" and tool[0].input == {}


def test_tool_results_translate_for_the_mock(claude: anthropic.Anthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"c": 1}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"c": 2}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "no",
                    "is_error": True,
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    msg = claude.messages.create(model=MOCK, max_tokens=100, messages=messages)
    assert msg.content[0].text == "Mock reply to: thanks"  # type: ignore[union-attr]


# --- (b) Anthropic SDK -> gateway -> fake Anthropic upstream (pass-through) -----


def test_passthrough_sends_the_client_body_with_only_the_model_changed(
    claude: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    request: dict[str, Any] = {
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        "messages": _user("hi"),
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["END"],
    }
    msg = claude.messages.create(
        model=CLAUDE,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        extra_body={"temperature": 0.3, "top_k": 5},
        **request,
    )
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.body == {**request, "temperature": 0.3, "top_k": 5, "model": "claude-upstream"}
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["anthropic-version"] == claude.default_headers["anthropic-version"]
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert CLIENT_KEY not in " ".join(seen.headers.values())
    assert "Authorization" not in seen.headers
    # The upstream's answer comes back untouched, cache usage included.
    assert msg.id.startswith("msg_fake_")
    assert msg.model == "claude-upstream"
    assert msg.content[0].text == upstream.reply  # type: ignore[union-attr]
    assert msg.usage.cache_read_input_tokens == 3
    assert msg.usage.cache_creation_input_tokens == 2


def test_client_anthropic_version_wins(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    claude.messages.create(
        model=CLAUDE,
        max_tokens=10,
        messages=_user("hi"),
        extra_headers={"anthropic-version": "2024-10-22"},
    )
    assert upstream.requests[-1].headers["anthropic-version"] == "2024-10-22"


def test_default_anthropic_version_without_a_client_header(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    body = {"model": CLAUDE, "max_tokens": 10, "messages": _user("hi")}
    resp = httpx.post(gw.url + "/v1/messages", json=body, timeout=10)
    assert resp.status_code == 200
    assert upstream.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_passthrough_stream(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with claude.messages.stream(model=CLAUDE, max_tokens=64, messages=_user("hi")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == upstream.reply
    assert upstream.requests[-1].body["stream"] is True
    assert upstream.requests[-1].body["model"] == "claude-upstream"
    assert final.usage.input_tokens == 6 and final.usage.output_tokens == 7
    assert final.usage.cache_read_input_tokens == 3


def test_passthrough_stream_keeps_the_upstream_events(gw: GatewayServer) -> None:
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": _user("hi")}
    resp = httpx.post(gw.url + "/v1/messages", json=body, timeout=10)
    events = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert events[-2:] == ["message_delta", "message_stop"]


def test_passthrough_thinking(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=_user("think"),
    ) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == THINKING_TEXT
    assert thinking.signature == THINKING_SIGNATURE


# --- (c) OpenAI SDK -> gateway -> fake Anthropic upstream (translation) ---------


def test_openai_client_chats_with_claude(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = oai.chat.completions.create(
        model=CLAUDE,
        max_tokens=50,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        user="user-7",
    )
    assert resp.choices[0].message.content == upstream.reply
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 11  # 6 fresh + 3 cache reads + 2 cache writes
    assert resp.usage.completion_tokens == 7
    assert resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 3
    seen = upstream.requests[-1]
    assert seen.body == {
        "model": "claude-upstream",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "user-7"},
    }
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers


def test_openai_client_without_max_tokens_gets_the_default(
    oai: openai.OpenAI, upstream: FakeUpstream
) -> None:
    oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}])
    assert upstream.requests[-1].body["max_tokens"] == 4096


def test_openai_stream_from_claude_with_usage(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    chunks, text = stream_hi(oai, CLAUDE)
    assert text == upstream.reply
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 11 and chunks[-1].usage.total_tokens == 18


def test_openai_tool_call_from_claude(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = oai.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[OPENAI_WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == TOOL_PREAMBLE
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_fake_1" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_INPUT  # type: ignore[union-attr]
    sent = upstream.requests[-1].body
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == {"type": "any"}


def test_openai_streamed_tool_call_deltas_from_claude(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": "weather?"}],
            tools=[OPENAI_WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    pieces: list[str] = []
    ids: list[str] = []
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            assert call.index == 0
            if call.id:
                ids.append(call.id)
            if call.function and call.function.arguments:
                pieces.append(call.function.arguments)
    assert ids == ["toolu_fake_1"]
    assert len(pieces) > 1  # really streamed, not one blob
    assert json.loads("".join(pieces)) == TOOL_INPUT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_openai_tool_results_reach_claude_as_blocks(
    oai: openai.OpenAI, upstream: FakeUpstream
) -> None:
    oai.chat.completions.create(
        model=CLAUDE,
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_9", "content": "-3C"},
        ],
    )
    sent = upstream.requests[-1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "-3C"}],
    }


def test_openai_reasoning_effort_surfaces_thinking(
    oai: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = oai.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": "think"}],
        reasoning_effort="low",
    )
    sent = upstream.requests[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] > 2048
    message = resp.choices[0].message.model_dump()
    assert message["reasoning_content"] == THINKING_TEXT
    assert message["thinking_blocks"][0]["signature"] == THINKING_SIGNATURE
    assert message["content"] == upstream.reply


def test_openai_stream_surfaces_reasoning_content(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": "think"}],
            reasoning_effort="medium",
            stream=True,
        )
    )
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert reasoning == THINKING_TEXT
    signatures = [tb["signature"] for d in deltas for tb in d.get("thinking_blocks") or []]
    assert signatures == [THINKING_SIGNATURE]


# --- (d) count_tokens -----------------------------------------------------------


def test_count_tokens_passes_through(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    result = claude.messages.count_tokens(
        model=CLAUDE, system="Be brief.", messages=_user("count these words")
    )
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body["model"] == "claude-upstream"
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert result.input_tokens == count_input_tokens(seen.body)


def test_count_tokens_estimates_for_the_mock(claude: anthropic.Anthropic) -> None:
    request: dict[str, Any] = {"system": "Be brief.", "messages": _user("count these words")}
    result = claude.messages.count_tokens(model=MOCK, **request)
    assert result.input_tokens == estimate_request_tokens(request)
    assert result.input_tokens != count_input_tokens(request)
