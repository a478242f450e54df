"""The compress stage asks the provider to count the request it is about to send."""

from __future__ import annotations

from typing import Any

import openai

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import make_settings


def test_the_provider_counts_the_trimmed_request_not_the_clients() -> None:
    # Counting "auto" does not tokenize the turns trimming drops, so the total before is
    # in part a guess: only the request sent has a count of ours to set against the
    # provider's.
    turns: list[dict[str, Any]] = []
    for i in range(12):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me more " * 30})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "here is more " * 30})
    turns.append({"role": "user", "content": "And the last question?"})
    with FakeUpstream() as up:
        settings = make_settings(
            {
                "providers": {
                    "claude": {"type": "anthropic", "base_url": up.url, "api_key": "sk-ant-up"}
                },
                "models": [
                    {"name": "m", "deployments": [{"provider": "claude", "model": "claude-haiku"}]}
                ],
                "compression": {
                    "enabled": True,
                    "context_tokens": {"claude-haiku": 2048},
                    "reserve_output_tokens": 256,
                },
            }
        )
        with GatewayServer(settings) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
            client.chat.completions.create(model="m", messages=turns)  # type: ignore[arg-type]
    (counted,) = [r.body["messages"] for r in up.requests if r.path.endswith("/count_tokens")]
    sent = [r.body["messages"] for r in up.requests if r.path.endswith("/messages")][-1]
    assert len(counted) < len(turns) and counted[-1]["content"] == "And the last question?"
    # The fake counts more than we do: trimming went on to its count, from there.
    assert len(sent) < len(counted) and counted[-len(sent) :] == sent
