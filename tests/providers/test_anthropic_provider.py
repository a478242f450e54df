"""AnthropicProvider and VertexAnthropic against the fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aicp.config import ProviderSettings
from aicp.errors import InvalidRequest, UpstreamStatusError
from aicp.protocol.jsonutil import loads
from aicp.providers.anthropic import AnthropicProvider, UsageTap, api_root
from aicp.providers.base import ANTHROPIC, OPENAI, Call, Timeouts
from aicp.providers.http import HttpClient
from aicp.providers.vertex_anthropic import VERTEX_VERSION, VertexAnthropic
from aicp.testing import FakeUpstream
from aicp.testing.fake_anthropic import THINKING_SIGNATURE, count_input_tokens

TIMEOUTS = Timeouts(connect=5, first_byte=5, idle=5)
MESSAGES_BODY: dict[str, Any] = {
    "model": "alias",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.aclose()


def _provider(up: FakeUpstream, http: HttpClient, **settings: Any) -> AnthropicProvider:
    config = ProviderSettings(type="anthropic", base_url=up.url, api_key="sk-up", **settings)
    return AnthropicProvider("claude", config, http)


def _vertex(up: FakeUpstream, http: HttpClient, **settings: Any) -> VertexAnthropic:
    async def token() -> str:
        return "ya29.token"

    config = ProviderSettings(type="vertex", project="proj-1", region="us-east5", **settings)
    return VertexAnthropic("vertex", config, http, token, up.url + "/v1/")


def _call(ingress: str, body: dict[str, Any], **kw: Any) -> Call:
    headers = kw.pop("headers", {})
    operation = kw.pop("operation", "chat")
    return Call(ingress, operation, body, "claude-real", headers, TIMEOUTS, **kw)


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com"),
        ("https://api.anthropic.com/", "https://api.anthropic.com"),
        ("https://proxy.test/anthropic/v1", "https://proxy.test/anthropic"),
        ("https://proxy.test/anthropic/v1/", "https://proxy.test/anthropic"),
    ],
)
def test_base_url_with_or_without_v1(url: str, root: str) -> None:
    assert api_root(url) == root


async def test_base_url_defaults_to_anthropic(http: HttpClient) -> None:
    provider = AnthropicProvider("c", ProviderSettings(type="anthropic"), http)
    assert provider.url(None, "messages") == "https://api.anthropic.com/v1/messages"
    assert provider.native == ANTHROPIC and provider.local is False


async def test_only_chosen_client_headers_are_forwarded(up: FakeUpstream, http: HttpClient) -> None:
    provider = _provider(up, http, api_version="2023-01-01")
    client = {
        "x-api-key": "client-key",
        "authorization": "Bearer client",
        "anthropic-beta": "b1",
        "traceparent": "00-abc-def-01",
        "cookie": "c=1",
    }
    await provider.complete(_call(ANTHROPIC, MESSAGES_BODY, headers=client))
    seen = up.requests[-1].headers
    assert seen["x-api-key"] == "sk-up"
    assert seen["anthropic-version"] == "2023-01-01"  # the settings' version, none from the client
    assert seen["anthropic-beta"] == "b1" and seen["traceparent"] == "00-abc-def-01"
    assert "Authorization" not in seen and "Cookie" not in seen


async def test_passthrough_stream_taps_usage(up: FakeUpstream, http: HttpClient) -> None:
    provider = _provider(up, http)
    stream = await provider.stream(_call(ANTHROPIC, {**MESSAGES_BODY, "stream": True}, stream=True))
    raw = b"".join([item async for item in stream if isinstance(item, bytes)])
    await stream.aclose()
    assert stream.passthrough and b"event: message_stop" in raw
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (11, 7)
    assert (stream.usage.cached_tokens, stream.usage.cache_creation_tokens) == (3, 2)


def test_usage_tap_survives_events_split_anywhere() -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
        b'{"input_tokens":5,"cache_read_input_tokens":4,"output_tokens":1}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"the word usage appears"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":9}}\n\n'
    )
    tap = UsageTap()
    usage = tap.usage
    for i in range(0, len(raw), 5):
        tap.feed(raw[i : i + 5])
    assert tap.usage is usage  # updated in place: the stream holds this object
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (9, 9, 4)


async def test_openai_ingress_count_tokens_is_translated(
    up: FakeUpstream, http: HttpClient
) -> None:
    provider = _provider(up, http)
    body = {
        "model": "alias",
        "messages": [{"role": "user", "content": "count me"}],
        "max_tokens": 9,
    }
    n = await provider.count_tokens(_call(OPENAI, body, operation="count_tokens"))
    sent = up.requests[-1].body
    assert sent == {"model": "claude-real", "messages": [{"role": "user", "content": "count me"}]}
    assert n == count_input_tokens(sent)


async def test_embeddings_are_refused(up: FakeUpstream, http: HttpClient) -> None:
    with pytest.raises(InvalidRequest):
        await _provider(up, http).embed(_call(OPENAI, {"model": "x", "input": "y"}))


async def test_models_come_from_settings_or_the_list_api(
    up: FakeUpstream, http: HttpClient
) -> None:
    assert await _provider(up, http, models=["a", "b"]).list_models() == ["a", "b"]
    assert await _provider(up, http).list_models() == up.models
    seen = up.requests[-1]
    assert seen.path == "/v1/models" and seen.headers["x-api-key"] == "sk-up"


async def test_upstream_error_keeps_anthropic_message(up: FakeUpstream, http: HttpClient) -> None:
    up.fault(status=429, retry_after=3, message="slow down")
    with pytest.raises(UpstreamStatusError) as info:
        await _provider(up, http).complete(_call(ANTHROPIC, MESSAGES_BODY))
    assert info.value.status == 429 and info.value.message == "slow down"
    assert info.value.retry_after == 3 and info.value.retryable


# --- Vertex ---------------------------------------------------------------------


async def test_vertex_raw_predict(up: FakeUpstream, http: HttpClient) -> None:
    provider = _vertex(up, http)
    reply = await provider.complete(_call(ANTHROPIC, MESSAGES_BODY, headers={"x-api-key": "c"}))
    seen = up.requests[-1]
    assert seen.path == (
        "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-real:rawPredict"
    )
    assert seen.body == {
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
        "anthropic_version": VERTEX_VERSION,
    }
    assert seen.headers["Authorization"] == "Bearer ya29.token"
    assert "x-api-key" not in seen.headers
    assert reply.raw is not None and loads(reply.raw)["model"] == "claude-real"


async def test_vertex_stream_translated_for_openai(up: FakeUpstream, http: HttpClient) -> None:
    provider = _vertex(up, http)
    body = {
        "model": "alias",
        "messages": [{"role": "user", "content": "think"}],
        "reasoning_effort": "low",
        "stream": True,
    }
    stream = await provider.stream(_call(OPENAI, body, stream=True))
    chunks = [c async for c in stream if isinstance(c, dict)]
    await stream.aclose()
    assert up.requests[-1].path.endswith("/models/claude-real:streamRawPredict")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    signatures = [tb["signature"] for d in deltas for tb in d.get("thinking_blocks") or []]
    assert signatures == [THINKING_SIGNATURE]
    assert stream.usage.prompt_tokens == 11


async def test_vertex_count_tokens(up: FakeUpstream, http: HttpClient) -> None:
    provider = _vertex(up, http)
    body = {"model": "alias", "messages": [{"role": "user", "content": "x"}]}
    n = await provider.count_tokens(_call(ANTHROPIC, body, operation="count_tokens"))
    seen = up.requests[-1]
    assert seen.path.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert seen.body["model"] == "claude-real"
    assert n == count_input_tokens(seen.body)


async def test_vertex_lists_configured_models_only(up: FakeUpstream, http: HttpClient) -> None:
    assert await _vertex(up, http, models=["claude-a@1"]).list_models() == ["claude-a@1"]
    assert up.requests == []
