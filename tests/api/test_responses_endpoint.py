"""/v1/responses end to end: the official OpenAI SDK against a real gateway on loopback.

The mock provider and the fake Anthropic upstream exercise translation through
the canonical chat form; a `vllm` provider on the fake upstream shows the chat
body a vendor without the Responses API receives; the `openai` provider on the
fake upstream exercises pass-through to its own /v1/responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.fake_responses import FUNCTION_ARGUMENTS
from tests.helpers import make_settings

MASTER = "sk-master-responses-test"
MOCK = "mock/mock-1"
CLAUDE = "claude/claude-upstream"
CHAT_ONLY = "local/fake-model"  # an OpenAI-compatible vendor without the Responses API
NATIVE = "up/fake-model"  # OpenAI itself: the Responses API passes through
IN_PRICE, OUT_PRICE = 1000.0, 2000.0  # USD per million tokens = micro-dollars per token
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _priced(name: str, provider: str, model: str) -> dict[str, Any]:
    deployment = {
        "provider": provider,
        "model": model,
        "input_cost_per_mtok": IN_PRICE,
        "output_cost_per_mtok": OUT_PRICE,
    }
    return {"name": name, "deployments": [deployment]}


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {
                "mock": {"type": "mock", "options": {"chunk_delay_ms": 0}},
                "up": {
                    "type": "openai",
                    "base_url": upstream.url + "/v1",
                    "api_key": "sk-upstream-secret",
                    "models": ["fake-model"],
                },
                "local": {
                    "type": "vllm",
                    "base_url": upstream.url + "/v1",
                    "models": ["fake-model"],
                },
                "claude": {
                    "type": "anthropic",
                    "base_url": upstream.url,
                    "api_key": "sk-ant-upstream-secret",
                    "models": ["claude-upstream"],
                },
            },
            "models": [
                _priced("priced", "mock", "mock-1"),
                _priced("priced-native", "up", "fake-model"),
            ],
            "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        }
    )
    with GatewayServer(settings) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0, timeout=10)


# --- translation: the mock provider --------------------------------------------


def test_mock_answers_a_responses_client(client: openai.OpenAI) -> None:
    resp = client.responses.create(model=MOCK, input="hello there")
    assert resp.object == "response" and resp.status == "completed"
    assert resp.id.startswith("resp_")
    assert resp.model == MOCK
    assert resp.output_text == "Mock reply to: hello there"
    message = resp.output[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert resp.usage is not None
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


def test_instructions_become_the_system_prompt(client: openai.OpenAI) -> None:
    plain = client.responses.create(model=MOCK, input="hi")
    instructions = "You are a terse assistant. " * 20
    prompted = client.responses.create(model=MOCK, instructions=instructions, input="hi")
    assert plain.usage is not None and prompted.usage is not None
    # The mock counts the canonical messages, so the translated instructions add tokens.
    assert prompted.usage.input_tokens >= plain.usage.input_tokens + len(instructions) // 4 - 2
    assert prompted.instructions == instructions


def test_mock_calls_a_function_tool(client: openai.OpenAI) -> None:
    resp = client.responses.create(
        model=MOCK,
        input="weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    calls = [item for item in resp.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.arguments == "{}"
    assert call.call_id.startswith("call_")
    assert resp.output_text == ""


def test_a_function_call_output_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MOCK, input="weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call"
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": "{}"},
        {"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"},
        {"role": "user", "content": [{"type": "input_text", "text": "thanks, and tomorrow?"}]},
    ]
    second = client.responses.create(model=MOCK, input=history)
    assert second.output_text == "Mock reply to: thanks, and tomorrow?"


def test_json_schema_output(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"echo": {"type": "string"}},
        "required": ["echo"],
        "additionalProperties": False,
    }
    resp = client.responses.create(
        model=MOCK,
        input="structured please",
        text={"format": {"type": "json_schema", "name": "echo", "schema": schema, "strict": True}},
    )
    assert json.loads(resp.output_text) == {"echo": "structured please"}
    assert resp.text is not None and resp.text.format is not None
    assert resp.text.format.type == "json_schema"


def test_stream_is_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MOCK, instructions="Be brief.", input="stream me please"
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Mock reply to: stream me please"
    assert final.output_text == deltas
    assert final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_stream_of_a_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MOCK,
        input="weather?",
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].arguments == "{}"


def test_stream_true_on_create(client: openai.OpenAI) -> None:
    stream = client.responses.create(model=MOCK, input="raw stream", stream=True)
    kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


# --- translation: a vendor without the Responses API, and Anthropic ----------------


def test_a_chat_only_vendor_receives_the_translated_chat_body(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.responses.create(
        model=CHAT_ONLY,
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "hi"},
        ],
        max_output_tokens=50,
        temperature=0.2,
        reasoning={"effort": "low"},
        text={"format": {"type": "json_object"}},
    )
    seen = upstream.requests[-1]
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
    }
    assert resp.output_text == '{"answer": "fake"}'
    assert resp.usage is not None
    assert resp.usage.input_tokens == 11 and resp.usage.output_tokens == 7
    assert resp.usage.input_tokens_details.cached_tokens == 3


def test_a_function_round_trip_reaches_a_chat_vendor_as_tool_messages(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    first = client.responses.create(model=CHAT_ONLY, input="weather?", tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call"
    assert call.call_id == "call_fake_1" and call.arguments == '{"city": "Paris"}'
    assert upstream.requests[-1].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER["description"],
                "parameters": WEATHER["parameters"],
            },
        }
    ]
    client.responses.create(
        model=CHAT_ONLY,
        input=[
            {"role": "user", "content": "weather?"},
            call.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C"},
        ],
    )
    assert upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_fake_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_fake_1", "content": "21C"},
    ]


def test_claude_answers_a_responses_client(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = client.responses.create(
        model=CLAUDE, instructions="Be brief.", input="hi", max_output_tokens=64
    )
    assert resp.output_text == upstream.reply
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.body["system"] == "Be brief."
    assert seen.body["max_tokens"] == 64
    assert seen.body["messages"] == [{"role": "user", "content": "hi"}]
    assert resp.usage is not None
    assert resp.usage.input_tokens == 11 and resp.usage.output_tokens == 7  # cache included
    assert resp.usage.input_tokens_details.cached_tokens == 3


def test_claude_streams_to_a_responses_client(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    with client.responses.stream(model=CLAUDE, input="hi", max_output_tokens=64) as stream:
        final = stream.get_final_response()
    assert final.output_text == upstream.reply
    assert final.usage is not None and final.usage.output_tokens == 7
    assert upstream.requests[-1].body["stream"] is True


# --- pass-through: OpenAI's own Responses API ----------------------------------------


def test_passthrough_sends_the_client_body_with_only_the_model_changed(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    request: dict[str, Any] = {
        "instructions": "Be kind.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "max_output_tokens": 64,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "web_search"}],  # hosted tools only OpenAI runs
        "tool_choice": "none",
    }
    resp = client.responses.create(model=NATIVE, **request)
    seen = upstream.requests[-1]
    assert seen.path == "/v1/responses"
    assert seen.body == {**request, "model": "fake-model"}
    assert seen.headers["Authorization"] == "Bearer sk-upstream-secret"
    assert resp.id.startswith("resp_") and resp.model == "fake-model"
    assert resp.output_text == upstream.reply
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 3


def test_passthrough_stream(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with client.responses.stream(model=NATIVE, input="hi", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        final = stream.get_final_response()
    assert upstream.requests[-1].path == "/v1/responses"
    assert upstream.requests[-1].body["stream"] is True
    call = final.output[0]
    assert call.type == "function_call" and call.arguments == FUNCTION_ARGUMENTS


def test_passthrough_keeps_the_upstream_events(gw: GatewayServer, upstream: FakeUpstream) -> None:
    body = {"model": NATIVE, "input": "hi", "stream": True}
    resp = httpx.post(
        gw.url + "/responses", json=body, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "data: [DONE]" not in resp.text


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": MOCK}, "input", "'input' is a required property"),
        ({"model": MOCK, "input": 42}, "input", "must be a string or an array"),
        ({"input": "hi"}, "model", "'model' is a required property"),
        ({"model": MOCK, "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "one of"),
        ({"model": MOCK, "input": ["hi"]}, "input[0]", "must be an object"),
        ({"model": MOCK, "input": "hi", "max_output_tokens": 0}, "max_output_tokens", "at least"),
        ({"model": MOCK, "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name", "name"),
    ],
)
def test_bad_input_is_a_400_in_openai_format(
    gw: GatewayServer, body: dict[str, Any], param: str, words: str
) -> None:
    resp = httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]


def test_what_only_openai_keeps_is_refused_for_a_translated_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as stateful:
        client.responses.create(model=MOCK, input="more", previous_response_id="resp_123")
    assert "previous_response_id" in stateful.value.message
    with pytest.raises(openai.BadRequestError) as hosted:
        client.responses.create(model=MOCK, input="hi", tools=[{"type": "web_search"}])
    assert "tools[0]" in hosted.value.message and "function tools only" in hosted.value.message
    # Neither says anything about the deployment's health: past the breaker's minimum of
    # 10 requests at a 50% failure rate, the mock still answers.
    for _ in range(12):
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model=MOCK, input="hi", tools=[{"type": "web_search"}])
    assert client.responses.create(model=MOCK, input="hi").output_text == "Mock reply to: hi"


def test_wrong_method_is_a_405(gw: GatewayServer) -> None:
    resp = httpx.get(gw.url + "/v1/responses")
    assert resp.status_code == 405
    assert "error" in resp.json()


# --- spend ---------------------------------------------------------------------------


def _spend(gw: GatewayServer) -> dict[str, Any]:
    resp = httpx.get(
        gw.url + "/admin/spend",
        params={"by": "model"},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_translated_responses_are_billed_like_chat(
    gw: GatewayServer, client: openai.OpenAI
) -> None:
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    chat = client.chat.completions.create(model="priced", messages=messages, max_tokens=5)
    resp = client.responses.create(model="priced", input=messages, max_output_tokens=5)
    with client.responses.stream(model="priced", input=messages, max_output_tokens=5) as s:
        s.get_final_response()
    assert chat.usage is not None and resp.usage is not None
    # The same canonical request, so the same usage as chat.
    assert resp.usage.input_tokens == chat.usage.prompt_tokens
    assert resp.usage.output_tokens == chat.usage.completion_tokens
    one = chat.usage.prompt_tokens * IN_PRICE + chat.usage.completion_tokens * OUT_PRICE
    report = _spend(gw)
    assert sum(row["requests"] for row in report["data"]) == 3
    assert report["total_micros"] == 3 * round(one)


def test_passthrough_responses_are_billed_from_upstream_usage(
    gw: GatewayServer, client: openai.OpenAI
) -> None:
    client.responses.create(model="priced-native", input="hi")
    with client.responses.stream(model="priced-native", input="hi") as stream:
        stream.get_final_response()
    report = _spend(gw)
    one = 11 * IN_PRICE + 7 * OUT_PRICE  # the fake upstream's fixed usage
    assert report["total_micros"] == 2 * round(one)
    assert sum(row["prompt_tokens"] for row in report["data"]) == 22
    assert sum(row["completion_tokens"] for row in report["data"]) == 14


def test_a_stream_that_fails_midway_ends_with_an_error_event(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    upstream.fault(cut_after=3, path="/chat/completions")
    body = {"model": CHAT_ONLY, "input": "hi", "stream": True}
    resp = httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert resp.status_code == 200
    data = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    assert data[0]["type"] == "response.created"
    assert "response.output_text.delta" in [d["type"] for d in data]
    last = data[-1]
    assert last["type"] == "error"
    assert last["message"] and last["code"]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert "response.completed" not in [d["type"] for d in data]
