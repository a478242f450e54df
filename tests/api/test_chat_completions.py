"""The OpenAI surface end to end: the official SDK -> the gateway -> a fake upstream or the mock.

`up/...` models go to an OpenAI-compatible provider on `FakeUpstream` (the body passes
through with only the model rewritten); `mock/...` models go to the built-in mock
(the translation path: canonical chunks encoded by the gateway).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.upstream import Recorded
from tests.helpers import openai_settings

CLIENT_KEY = "sk-client-own-key"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(openai_settings(upstream)) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayServer, upstream: FakeUpstream) -> openai.OpenAI:
    upstream.requests.clear()
    upstream.clear_faults()
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def last_chat(upstream: FakeUpstream) -> Recorded:
    chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert chats, "the upstream saw no chat request"
    return chats[-1]


HI = [{"role": "user", "content": "hi"}]


# --- chat, non-stream and stream ------------------------------------------------------


def test_passthrough_chat_returns_the_upstream_answer(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.chat.completions.create(model="up/fake-model", messages=HI)
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == 18
    # Pass-through keeps fields the gateway does not know about.
    assert resp.system_fingerprint == "fp_fake"
    assert last_chat(upstream).body["model"] == "fake-model"


def test_mock_chat_answers_without_network(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="mock/mock-1", messages=HI)
    assert resp.choices[0].message.content == "Mock reply to: hi"
    assert resp.model == "mock-1"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    assert not upstream.requests


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-1"])
def test_stream_text_is_reassembled(client: openai.OpenAI, model: str) -> None:
    chunks = list(client.chat.completions.create(model=model, messages=HI, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = "Hello from the fake upstream" if model.startswith("up/") else "Mock reply to: hi"
    assert text == expected
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-1"])
def test_stream_usage_chunk_only_when_asked(client: openai.OpenAI, model: str) -> None:
    plain = list(client.chat.completions.create(model=model, messages=HI, stream=True))
    assert all(c.usage is None for c in plain)
    assert all(c.choices for c in plain)

    asked = list(
        client.chat.completions.create(
            model=model,
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = asked[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens > 0
    assert all(c.usage is None for c in asked[:-1])


def test_stream_include_usage_reaches_the_upstream(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    list(
        client.chat.completions.create(
            model="up/fake-model",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    body = last_chat(upstream).body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


# --- tools, response formats, multimodal --------------------------------------------------


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-1"])
def test_tool_call_non_stream(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    resp = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert isinstance(json.loads(calls[0].function.arguments), dict)
    if model.startswith("up/"):
        assert last_chat(upstream).body["tools"] == [WEATHER_TOOL]


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-1"])
def test_streamed_tool_call_deltas_are_reassembled(client: openai.OpenAI, model: str) -> None:
    with client.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].function.name == "get_weather"
    args = json.loads(calls[0].function.arguments)
    if model.startswith("up/"):
        # The fake splits the arguments over two deltas; the SDK joins them.
        assert args == {"city": "Paris"}
    else:
        assert args == {}
    assert calls[0].id


def test_tool_result_round_trip_reaches_the_upstream(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
    ]
    client.chat.completions.create(
        model="up/fake-model",
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    body = last_chat(upstream).body
    assert body["messages"] == messages
    assert body["tool_choice"] == "none"


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-1"])
def test_response_format_json_object(
    client: openai.OpenAI, upstream: FakeUpstream, model: str
) -> None:
    resp = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_object"},
    )
    content = resp.choices[0].message.content
    assert content is not None
    assert isinstance(json.loads(content), dict)
    if model.startswith("up/"):
        assert last_chat(upstream).body["response_format"] == {"type": "json_object"}


def test_response_format_json_schema_passes_through(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    fmt: dict[str, Any] = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        },
    }
    resp = client.chat.completions.create(
        model="up/fake-model",
        messages=[{"role": "user", "content": "answer"}],
        response_format=fmt,
    )
    assert json.loads(resp.choices[0].message.content or "") == {"answer": "fake"}
    assert last_chat(upstream).body["response_format"] == fmt
    mock = client.chat.completions.create(
        model="mock/mock-1",
        messages=[{"role": "user", "content": "answer"}],
        response_format=fmt,
    )
    assert json.loads(mock.choices[0].message.content or "") == {"echo": "answer"}


def test_multimodal_parts_reach_the_upstream_intact(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "what is in this picture?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    client.chat.completions.create(
        model="up/fake-model",
        messages=[{"role": "user", "content": parts}],
    )
    assert last_chat(upstream).body["messages"] == [{"role": "user", "content": parts}]


def test_mock_reads_text_from_content_parts(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="mock/mock-1",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            }
        ],
    )
    assert resp.choices[0].message.content == "Mock reply to: look"


# --- pass-through fidelity -----------------------------------------------------------------


def test_passthrough_body_equals_client_body_except_model(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.chat.completions.create(
        model="up/fake-model",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        n=2,
        stop=["\n\n", "END"],
        seed=42,
        user="user-1234",
        metadata={"team": "search", "ticket": "T-1"},
        temperature=0.3,
        max_completion_tokens=50,
        logit_bias={"50256": -100},
        extra_body={"some_vendor_field": 1},
    )
    assert len(resp.choices) == 2
    sent = last_chat(upstream).body
    assert sent == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "n": 2,
        "stop": ["\n\n", "END"],
        "seed": 42,
        "user": "user-1234",
        "metadata": {"team": "search", "ticket": "T-1"},
        "temperature": 0.3,
        "max_completion_tokens": 50,
        "logit_bias": {"50256": -100},
        "some_vendor_field": 1,
    }


def test_mock_honours_n(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="mock/mock-1", messages=HI, n=3)
    assert [c.index for c in resp.choices] == [0, 1, 2]


def test_client_key_is_never_forwarded_provider_key_is(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    client.chat.completions.create(model="up/fake-model", messages=HI)
    list(client.chat.completions.create(model="up/fake-model", messages=HI, stream=True))
    client.embeddings.create(model="up/fake-model", input="x")
    assert len(upstream.requests) == 3
    for req in upstream.requests:
        headers = {k.lower(): v for k, v in req.headers.items()}
        assert headers["authorization"] == "Bearer sk-upstream-secret"
        assert CLIENT_KEY not in " ".join(headers.values())


def test_response_carries_a_request_id(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mock/mock-1", messages=HI)
    assert raw.headers.get("x-request-id")
    mine = client.chat.completions.with_raw_response.create(
        model="mock/mock-1",
        messages=HI,
        extra_headers={"x-request-id": "my-trace-123"},
    )
    assert mine.headers["x-request-id"] == "my-trace-123"


# --- embeddings ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["up/fake-model", "mock/mock-embed"])
def test_embeddings_string_and_list(client: openai.OpenAI, model: str) -> None:
    one = client.embeddings.create(model=model, input="hello")
    assert len(one.data) == 1
    assert one.data[0].index == 0
    assert len(one.data[0].embedding) > 0
    many = client.embeddings.create(model=model, input=["a", "b", "c"])
    assert [d.index for d in many.data] == [0, 1, 2]
    assert all(len(d.embedding) == len(one.data[0].embedding) for d in many.data)


def test_embeddings_body_passes_through(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    client.embeddings.create(
        model="up/fake-model", input=["a", "b"], dimensions=8, encoding_format="float"
    )
    sent = upstream.requests[-1]
    assert sent.path.endswith("/embeddings")
    assert sent.body == {
        "model": "fake-model",
        "input": ["a", "b"],
        "dimensions": 8,
        "encoding_format": "float",
    }


def test_mock_embeddings_are_deterministic(client: openai.OpenAI) -> None:
    a = client.embeddings.create(model="mock/mock-embed", input="same")
    b = client.embeddings.create(model="mock/mock-embed", input="same")
    c = client.embeddings.create(model="mock/mock-embed", input="other")
    assert a.data[0].embedding == b.data[0].embedding
    assert a.data[0].embedding != c.data[0].embedding


# --- models and names ------------------------------------------------------------------------


def test_models_lists_mock_and_discovered_upstream_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "mock/mock-1" in ids
    assert "up/fake-model" in ids
    assert "up/fake-model-2" in ids
    assert ids == sorted(set(ids))


def test_bare_model_name_resolves_when_unambiguous(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.chat.completions.create(model="fake-model-2", messages=HI)
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert last_chat(upstream).body["model"] == "fake-model-2"
    mock = client.chat.completions.create(model="mock-1", messages=HI)
    assert mock.choices[0].message.content == "Mock reply to: hi"


def test_unknown_model_is_a_404_the_sdk_understands(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HI)
    assert info.value.code == "model_not_found"
    assert "no-such-model" in info.value.message


def test_upstream_error_reaches_the_client_as_an_sdk_error(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.fault(status=400, message="bad thing upstream", path="/chat/completions")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="up/fake-model", messages=HI)
    assert info.value.status_code == 400
    # The gateway is still fine afterwards.
    ok = client.chat.completions.create(model="up/fake-model", messages=HI)
    assert ok.choices[0].message.content == "Hello from the fake upstream"


def test_async_client_stream(gateway: GatewayServer) -> None:
    import asyncio

    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0
        ) as aclient:
            stream = await aclient.chat.completions.create(
                model="mock/mock-1",
                messages=HI,
                stream=True,
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run()) == "Mock reply to: hi"


def test_other_client_credentials_are_not_forwarded(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    import httpx

    upstream.requests.clear()
    resp = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "up/fake-model", "messages": HI},
        headers={"x-api-key": "client-x-api-key", "api-key": "client-api-key"},
    )
    assert resp.status_code == 200, resp.text
    headers = {k.lower(): v for k, v in last_chat(upstream).headers.items()}
    assert headers["authorization"] == "Bearer sk-upstream-secret"
    assert "x-api-key" not in headers
    assert "api-key" not in headers
    assert "client-" not in " ".join(headers.values())


def test_bare_name_served_by_two_providers_is_ambiguous(upstream: FakeUpstream) -> None:
    settings = openai_settings(
        upstream,
        providers={
            "up": {"type": "openai", "base_url": upstream.url + "/v1", "api_key": "a"},
            "up2": {"type": "openai", "base_url": upstream.url + "/v1", "api_key": "b"},
        },
    )
    with GatewayServer(settings) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="fake-model", messages=HI)
        assert info.value.code == "model_ambiguous"
        assert "up/fake-model" in info.value.message
        assert "up2/fake-model" in info.value.message
        ok = client.chat.completions.create(model="up2/fake-model", messages=HI)
        assert ok.choices[0].message.content == "Hello from the fake upstream"
        assert last_chat(upstream).headers["Authorization"] == "Bearer b"


def test_mock_streams_every_choice_when_n_is_set(client: openai.OpenAI) -> None:
    texts: dict[int, str] = {}
    for c in client.chat.completions.create(model="mock/mock-1", messages=HI, n=2, stream=True):
        for choice in c.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: "Mock reply to: hi", 1: "Mock reply to: hi"}
