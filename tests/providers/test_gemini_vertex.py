"""Gemini (AI Studio) and Vertex AI end to end: official SDKs -> gateway -> fake Google."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.errors import ConfigError
from aicp.providers.google_auth import TokenSource
from aicp.providers.http import HttpClient
from aicp.providers.vertex import VertexProvider, publisher_of
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import make_settings, stream_hi

KEY = "gm-upstream-secret"
TOKEN = "ya29.static-token"
VERTEX_PATH = "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.0-flash"

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def _settings(up: FakeUpstream) -> Any:
    return make_settings(
        {
            "providers": {
                "gemini": {"type": "gemini", "base_url": up.url + "/v1beta", "api_key": KEY},
                "vertex": {
                    "type": "vertex",
                    "base_url": up.url,
                    "api_key": TOKEN,
                    "project": "proj-1",
                    "region": "us-central1",
                    "models": ["gemini-2.0-flash", "text-embedding-005"],
                },
            },
            "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        }
    )


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(_settings(upstream)) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def _last(up: FakeUpstream, needle: str) -> Any:
    return next(r for r in reversed(up.requests) if needle in r.path)


def test_chat_sends_the_key_in_a_header_and_never_in_the_url(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.chat.completions.create(
        model="gemini/fake-model",
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}],
        max_tokens=50,
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == 18
    assert resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 3
    req = _last(upstream, ":generateContent")
    assert req.path == "/v1beta/models/fake-model:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert KEY not in req.path and KEY not in json.dumps(req.query)
    assert req.body["systemInstruction"] == {"parts": [{"text": "Be kind."}]}
    assert req.body["generationConfig"] == {"maxOutputTokens": 50}


def test_stream_with_usage(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    chunks, text = stream_hi(client, "gemini/fake-model")
    assert text == "Hello from the fake upstream"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    req = _last(upstream, ":streamGenerateContent")
    assert req.query == {"alt": "sse"}


def test_tool_calls_non_streamed_and_streamed(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.chat.completions.create(
        model="gemini/fake-model", messages=messages, tools=[TOOL], tool_choice="required"
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = _last(upstream, ":generateContent").body
    decl = sent["tools"][0]["functionDeclarations"][0]
    assert "additionalProperties" not in decl["parameters"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    stream = client.chat.completions.create(
        model="gemini/fake-model", messages=messages, tools=[TOOL], stream=True
    )
    chunks = [c for c in stream if c.choices]
    deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert deltas[0].id and deltas[0].id.startswith("call_")
    args = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The answer goes back as a functionResponse named after the call.
    follow = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 20}'},
    ]
    client.chat.completions.create(model="gemini/fake-model", messages=follow, tools=[TOOL])
    contents = _last(upstream, ":generateContent").body["contents"]
    assert contents[-1]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}}
    ]


def test_json_mode(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="gemini/fake-model",
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(resp.choices[0].message.content or "") == {"answer": "fake"}
    config = _last(upstream, ":generateContent").body["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


def test_multimodal_image_travels_inline(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    client.chat.completions.create(
        model="gemini/fake-model",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    parts = _last(upstream, ":generateContent").body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}


def test_embeddings_default_base64_and_floats(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.embeddings.create(model="gemini/text-embedding-004", input=["a", "b"])
    assert [d.index for d in resp.data] == [0, 1]
    assert resp.data[1].embedding == pytest.approx([0.2 * (j + 1) for j in range(8)], rel=1e-6)
    req = _last(upstream, ":batchEmbedContents")
    assert req.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert req.body["requests"][0]["model"] == "models/text-embedding-004"
    floats = client.embeddings.create(
        model="gemini/text-embedding-004", input="a", encoding_format="float", dimensions=3
    )
    assert floats.data[0].embedding == [0.1, 0.2, 0.3]


def test_models_are_discovered_from_all_pages(gw: GatewayServer, upstream: FakeUpstream) -> None:
    ids = {m["id"] for m in httpx.get(gw.url + "/v1/models").json()["data"]}
    assert {"gemini/fake-model", "gemini/fake-model-2"} <= ids
    assert "gemini/fake-embedding" not in ids  # no generateContent
    assert "vertex/gemini-2.0-flash" in ids
    pages = [r for r in upstream.requests if r.path == "/v1beta/models"]
    assert [r.query.get("pageToken") for r in pages] == [None, "2"]
    assert all(r.headers["x-goog-api-key"] == KEY for r in pages)


def test_a_429_with_retry_after_is_retried(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.fault(status=429, retry_after=0.05, path=":generateContent", message="quota")
    resp = client.chat.completions.create(
        model="gemini/fake-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert len([r for r in upstream.requests if ":generateContent" in r.path]) == 2


def test_an_exhausted_quota_reaches_the_client_with_googles_message(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.fault(status=429, path=":generateContent", message="quota exhausted", times=5)
    with pytest.raises(openai.RateLimitError, match="quota exhausted"):
        client.chat.completions.create(
            model="gemini/fake-model", messages=[{"role": "user", "content": "hi"}]
        )


def test_anthropic_sdk_message_through_gemini(gw: GatewayServer) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    msg = client.messages.create(
        model="gemini/fake-model",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "Hello from the fake upstream"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 7


# --- Vertex ------------------------------------------------------------------


def test_vertex_chat_uses_its_url_and_a_bearer_token(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    resp = client.chat.completions.create(
        model="vertex/gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    req = _last(upstream, ":generateContent")
    assert req.path == VERTEX_PATH + ":generateContent"
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "x-goog-api-key" not in {k.lower() for k in req.headers}


def test_vertex_stream_and_embeddings(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    stream = client.chat.completions.create(
        model="vertex/gemini-2.0-flash",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fake upstream"
    req = _last(upstream, ":streamGenerateContent")
    assert req.path == VERTEX_PATH + ":streamGenerateContent" and req.query == {"alt": "sse"}

    emb = client.embeddings.create(model="vertex/text-embedding-005", input=["x"])
    assert len(emb.data[0].embedding) == 8
    assert emb.usage.prompt_tokens == 4
    predict = _last(upstream, ":predict")
    assert predict.body == {"instances": [{"content": "x"}]}


def test_vertex_without_a_project_is_a_config_error_naming_the_provider() -> None:
    settings = make_settings({"providers": {"vx": {"type": "vertex", "api_key": "t"}}})

    async def build() -> None:
        http = HttpClient()
        try:
            with pytest.raises(ConfigError, match=r"'vx'.*project"):
                VertexProvider("vx", settings.providers["vx"], http)
        finally:
            await http.aclose()

    asyncio.run(build())


def test_vertex_global_region_uses_the_global_host() -> None:
    settings = make_settings(
        {"providers": {"vx": {"type": "vertex", "api_key": "t", "project": "p"}}}
    )

    async def build() -> str:
        http = HttpClient()
        try:
            provider = VertexProvider("vx", settings.providers["vx"], http)
            return provider.model_url("gemini-2.5-pro", "generateContent")
        finally:
            await http.aclose()

    assert asyncio.run(build()) == (
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global"
        "/publishers/google/models/gemini-2.5-pro:generateContent"
    )


def test_publishers_are_chosen_by_model_name() -> None:
    assert publisher_of("claude-sonnet-4@20250514") == "anthropic"
    assert publisher_of("gemini-2.5-flash") == "google"


@pytest.mark.skipif(
    importlib.util.find_spec("aicp.providers.vertex_anthropic") is None,
    reason="aicp.providers.vertex_anthropic (VertexAnthropic) is not written yet",
)
def test_vertex_sends_claude_models_to_one_anthropic_publisher_provider() -> None:
    settings = make_settings(
        {"providers": {"vx": {"type": "vertex", "api_key": "t", "project": "p"}}}
    )

    async def run() -> None:
        http = HttpClient()
        try:
            provider = VertexProvider("vx", settings.providers["vx"], http)
            assert provider.delegate("gemini-2.5-pro") is None
            inner = provider.delegate("claude-sonnet-4@20250514")
            assert type(inner).__name__ == "VertexAnthropic"
            assert provider.delegate("claude-opus-4") is inner
            # The contract: it gets the host and builds the publisher's paths itself.
            assert getattr(inner, "models_root", None) == (
                "https://aiplatform.googleapis.com/v1/projects/p/locations/global"
                "/publishers/anthropic/models"
            )
            await provider.aclose()
        finally:
            await http.aclose()

    asyncio.run(run())


# --- the token source ----------------------------------------------------------


class _Credentials:
    """Stands in for google.auth credentials: refresh() is slow and counted."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.token: str | None = None
        self.expiry = None

    def refresh(self, request: Any) -> None:
        import datetime as dt
        import time

        time.sleep(0.05)
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"
        self.expiry = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)


def test_token_source_refreshes_once_for_concurrent_callers_and_caches() -> None:
    creds = _Credentials()
    source = TokenSource("vx", credentials=creds)

    async def run() -> list[str]:
        first = await asyncio.gather(*(source() for _ in range(5)))
        return [*first, await source()]

    assert asyncio.run(run()) == ["token-1"] * 6
    assert creds.refreshes == 1
    assert "token" not in repr(source).replace("TokenSource", "")


def test_token_source_refreshes_a_token_about_to_expire() -> None:
    creds = _Credentials()
    source = TokenSource("vx", credentials=creds)

    async def run() -> tuple[str, str]:
        first = await source()
        source._expires = 0.0  # as if the margin before expiry had been reached
        return first, await source()

    assert asyncio.run(run()) == ("token-1", "token-2")


def test_a_static_token_needs_no_google_auth() -> None:
    assert asyncio.run(TokenSource("vx", TOKEN)()) == TOKEN
