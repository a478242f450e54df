from __future__ import annotations

import openai

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import stream_hi


def test_openai_sdk_chat_through_gateway(gateway: GatewayServer, upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused")
    resp = client.chat.completions.create(
        model="up/fake-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert upstream.requests[-1].body["model"] == "fake-model"
    assert upstream.requests[-1].headers["Authorization"] == "Bearer sk-upstream-secret"


def test_openai_sdk_stream_through_gateway(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused")
    chunks, text = stream_hi(client, "up/fake-model")
    assert text == "Hello from the fake upstream"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
