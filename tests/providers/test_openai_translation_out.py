"""An Anthropic client in front of an OpenAI-compatible upstream: what goes out is plain OpenAI."""

from __future__ import annotations

import anthropic

from aicp.testing import FakeUpstream, GatewayServer

ANTHROPIC_ONLY = {
    "thinking",
    "top_k",
    "reasoning_content",
    "thinking_blocks",
    "is_error",
    "cache_control",
}


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_anthropic_features_do_not_leak_to_openai_upstream(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0)
    msg = client.messages.create(
        model="up/fake-model",
        max_tokens=64,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "weather?", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "look it up", "signature": "sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "sunny",
                        "is_error": False,
                    },
                ],
            },
        ],
        tools=[
            {
                "name": "weather",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"},
            }
        ],
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 5},
    )
    assert msg.content
    sent = upstream.requests[-1].body
    assert sent["model"] == "fake-model"
    assert not _keys(sent) & ANTHROPIC_ONLY, _keys(sent) & ANTHROPIC_ONLY
    # The conversation itself survived: system, tool call and tool result.
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent["messages"][3]["content"] in ("sunny", [{"type": "text", "text": "sunny"}])
