"""Bedrock and Azure OpenAI end to end: official SDKs -> gateway -> fake upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import openai
import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials

from aicp.config import ProviderSettings
from aicp.errors import ConfigError
from aicp.providers.aws import SigV4Signer
from aicp.providers.azure import DEFAULT_API_VERSION
from aicp.providers.bedrock import BedrockProvider
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.upstream import Recorded
from tests.helpers import make_settings, stream_hi

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "session-token-example"
REGION = "eu-west-3"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
AZURE_KEY = "azure-secret-key"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "providers": {
                "bedrock": {
                    "type": "bedrock",
                    "base_url": upstream.url,
                    "region": REGION,
                    "options": {
                        "aws_access_key_id": KEY_ID,
                        "aws_secret_access_key": SECRET,
                        "aws_session_token": TOKEN,
                    },
                },
                "brk": {"type": "bedrock", "base_url": upstream.url, "api_key": "bedrock-api-key"},
                "az": {"type": "azure", "base_url": upstream.url + "/", "api_key": AZURE_KEY},
            },
            "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        }
    )
    with GatewayServer(settings) as gw:
        yield gw


@pytest.fixture
def up(upstream: FakeUpstream, gateway: GatewayServer) -> FakeUpstream:
    upstream.requests.clear()
    upstream.clear_faults()
    return upstream


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def _header(rec: Recorded, name: str) -> str | None:
    for key, value in rec.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _signature_of(rec: Recorded, base_url: str, credentials: Credentials) -> str:
    """Recompute the SigV4 signature of a recorded request with botocore."""
    auth = _header(rec, "authorization") or ""
    fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
    signed = fields["SignedHeaders"].split(";")
    headers = {name: _header(rec, name) or "" for name in signed}
    request = AWSRequest(
        method=rec.method, url=base_url + rec.path, data=orjson.dumps(rec.body), headers=headers
    )
    request.context["timestamp"] = _header(rec, "x-amz-date")
    signer = SigV4Auth(credentials, "bedrock", REGION)
    signature: str = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return signature


# --- Bedrock ------------------------------------------------------------------


def test_bedrock_chat_is_translated_to_converse_and_back(
    client: openai.OpenAI, up: FakeUpstream
) -> None:
    resp = client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        max_tokens=50,
        temperature=0.5,
    )
    assert resp.choices[0].message.content == up.reply
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 14 and resp.usage.completion_tokens == 7
    assert resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 3
    (rec,) = up.requests
    assert rec.path == f"/model/{CLAUDE}/converse"
    assert rec.body["system"] == [{"text": "be brief"}]
    assert rec.body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert rec.body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.5}


def test_bedrock_request_carries_a_verifiable_sigv4_signature(
    client: openai.OpenAI, up: FakeUpstream
) -> None:
    client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=[{"role": "user", "content": "sign me"}]
    )
    (rec,) = up.requests
    auth = _header(rec, "authorization") or ""
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert f"/{REGION}/bedrock/aws4_request" in auth
    assert _header(rec, "x-amz-security-token") == TOKEN
    expected = auth.rsplit("Signature=", 1)[1]
    assert _signature_of(rec, up.url, Credentials(KEY_ID, SECRET, TOKEN)) == expected
    assert _signature_of(rec, up.url, Credentials(KEY_ID, "wrong", TOKEN)) != expected


def test_bedrock_api_key_is_sent_as_bearer(client: openai.OpenAI, up: FakeUpstream) -> None:
    client.chat.completions.create(
        model=f"brk/{CLAUDE}", messages=[{"role": "user", "content": "hi"}]
    )
    (rec,) = up.requests
    assert _header(rec, "authorization") == "Bearer bedrock-api-key"
    assert _header(rec, "x-amz-date") is None


def test_bedrock_stream_with_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    chunks, text = stream_hi(client, f"bedrock/{CLAUDE}")
    assert text == up.reply
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 21
    assert up.requests[-1].path == f"/model/{CLAUDE}/converse-stream"


def test_bedrock_tool_calls(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="auto",
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    sent = up.requests[-1].body["toolConfig"]
    assert sent["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert sent["toolChoice"] == {"auto": {}}


def test_bedrock_tool_calls_streamed(client: openai.OpenAI, up: FakeUpstream) -> None:
    stream = client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "tooluse_fake_1" and calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    args = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(args) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_bedrock_tool_results_round_trip(client: openai.OpenAI, up: FakeUpstream) -> None:
    client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "tooluse_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    sent = up.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"] == [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}]}}
    ]


def test_bedrock_embeddings_one_invoke_per_input(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.embeddings.create(model=f"bedrock/{TITAN}", input=["one", "two words", "three"])
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert len(resp.data[0].embedding) == up.embedding_dim
    assert resp.data[0].embedding[0] == pytest.approx(0.04, rel=1e-5)  # base64 float32 decoded
    assert resp.usage.prompt_tokens == 4
    invokes = [r for r in up.requests if r.path == f"/model/{TITAN}/invoke"]
    assert sorted(r.body["inputText"] for r in invokes) == ["one", "three", "two words"]


def test_bedrock_throttling_is_retried(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.fault(status=429, path="/converse", message="Too many requests, please wait")
    resp = client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == up.reply
    assert [r.path for r in up.requests] == [f"/model/{CLAUDE}/converse"] * 2
    dates = [_header(r, "authorization") for r in up.requests]
    assert all(d and d.startswith("AWS4-HMAC-SHA256 Credential=") for d in dates)


def test_bedrock_error_carries_the_message_and_never_credentials(
    client: openai.OpenAI, up: FakeUpstream
) -> None:
    up.fault(status=400, path="/converse", message="The model id is invalid")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=f"bedrock/{CLAUDE}", messages=[{"role": "user", "content": "hi"}]
        )
    text = str(info.value)
    assert "The model id is invalid" in text
    assert SECRET not in text and TOKEN not in text
    assert len(up.requests) == 1  # a 400 is not retried


def test_http_image_url_is_rejected_before_the_upstream(
    client: openai.OpenAI, up: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError, match="data: URLs"):
        client.chat.completions.create(
            model=f"bedrock/{CLAUDE}",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                }
            ],
        )
    assert up.requests == []


def test_anthropic_sdk_through_bedrock(gateway: GatewayServer, up: FakeUpstream) -> None:
    pytest.importorskip("aicp.protocol.anthropic")
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    msg = client.messages.create(
        model=f"bedrock/{CLAUDE}",
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert msg.content[0].type == "text" and msg.content[0].text == up.reply
    assert msg.stop_reason == "end_turn"
    sent = up.requests[-1].body
    assert sent["system"] == [{"text": "be brief"}]
    assert sent["inferenceConfig"]["maxTokens"] == 64


def test_provider_repr_and_options_keep_secrets_out() -> None:
    settings = ProviderSettings(
        type="bedrock",
        region=REGION,
        options={"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET},
    )
    http: Any = object()  # never used: nothing is sent
    provider = BedrockProvider("b", settings, http)
    assert SECRET not in repr(provider) and SECRET not in repr(provider.signer)
    assert SECRET not in repr(settings)
    assert provider.url(CLAUDE, "converse") == (
        f"https://bedrock-runtime.{REGION}.amazonaws.com/model/{CLAUDE}/converse"
    )
    with pytest.raises(ConfigError, match="unknown options"):
        BedrockProvider("b", ProviderSettings(type="bedrock", options={"secret": 1}), http)


# --- Azure OpenAI ---------------------------------------------------------------


def _assert_azure(rec: Recorded, path: str) -> None:
    assert rec.path == path
    assert rec.query == {"api-version": DEFAULT_API_VERSION}
    assert _header(rec, "api-key") == AZURE_KEY
    assert _header(rec, "authorization") is None


def test_azure_chat_hits_the_deployment_url(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="az/my-gpt4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == up.reply
    (rec,) = up.requests
    _assert_azure(rec, "/openai/deployments/my-gpt4o/chat/completions")
    assert rec.body["messages"] == [{"role": "user", "content": "hi"}]


def test_azure_stream_with_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    chunks, text = stream_hi(client, "az/my-gpt4o")
    assert text == up.reply
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    _assert_azure(up.requests[-1], "/openai/deployments/my-gpt4o/chat/completions")


def test_azure_embeddings(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.embeddings.create(model="az/my-embedder", input=["a", "b"])
    assert len(resp.data) == 2
    _assert_azure(up.requests[-1], "/openai/deployments/my-embedder/embeddings")


def test_azure_api_version_from_settings() -> None:
    from aicp.providers.azure import AzureProvider

    settings = ProviderSettings(
        type="azure",
        base_url="https://res.openai.azure.com/openai",
        api_key="k",
        api_version="2025-04-01-preview",
        models=["dep"],
    )
    http: Any = object()  # never used: only URLs are built
    provider = AzureProvider("az", settings, http)
    call: Any = type("C", (), {"model": "dep"})()
    assert provider.url(call, "/chat/completions") == (
        "https://res.openai.azure.com/openai/deployments/dep/chat/completions"
        "?api-version=2025-04-01-preview"
    )
    assert "authorization" not in provider.headers and provider.headers["api-key"] == "k"


# --- credentials ------------------------------------------------------------------


async def test_sigv4_uses_botocore_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    signer = SigV4Signer("b", REGION, {})
    headers = await signer.sign("POST", "https://h.test/model/m/converse", b"{}", {})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/")


async def test_refreshable_credentials_are_reread_per_request() -> None:
    issued: list[str] = []

    def refresh() -> dict[str, str]:
        key = f"AKIDROTATED{len(issued)}"
        issued.append(key)
        # Already inside the refresh window: every request must refresh again.
        expiry = datetime.now(UTC) + timedelta(seconds=30)
        return {
            "access_key": key,
            "secret_key": "s",
            "token": "t",
            "expiry_time": expiry.isoformat(),
        }

    signer = SigV4Signer("b", REGION, {})
    signer._credentials = RefreshableCredentials.create_from_metadata(
        refresh(), refresh_using=refresh, method="test"
    )
    first = await signer.sign("POST", "https://h.test/x", b"{}", {})
    second = await signer.sign("POST", "https://h.test/x", b"{}", {})
    assert first["Authorization"] != second["Authorization"]
    assert issued[-1] in second["Authorization"]


def test_bedrock_api_key_is_discovered_from_its_env_var() -> None:
    settings = make_settings(env={"AWS_BEARER_TOKEN_BEDROCK": "bk", "AWS_REGION": "us-west-2"})
    bedrock = settings.providers["bedrock"]
    assert bedrock.api_key == "bk" and bedrock.region == "us-west-2"
    assert "bk" not in repr(bedrock)


def test_bedrock_stream_cut_mid_way_is_reported(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.fault(cut_after=2, path="/converse-stream")
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model=f"bedrock/{CLAUDE}",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
        )


def test_anthropic_sdk_stream_through_bedrock(gateway: GatewayServer, up: FakeUpstream) -> None:
    pytest.importorskip("aicp.protocol.anthropic")
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    with client.messages.stream(
        model=f"bedrock/{CLAUDE}", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == up.reply
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7
