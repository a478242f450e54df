"""The compress stage end to end: repeated context leaves the gateway once, the
history fits the target model's window, the receipt tells tokens before and
after, and the stored body is still what the client sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_settings

MASTER = "sk-master-compress-test"
LOG = "\n".join(
    f"2026-12-01T10:{i:02d}:00Z worker-{i % 7} processed batch {i * 37}" for i in range(60)
)


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def _gateway(up: FakeUpstream, **compression: Any) -> GatewayServer:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]}],
            "receipts": {"bodies": "full"},
            "compression": {"enabled": True, **compression},
        }
    )
    return GatewayServer(settings)


def _sent(up: FakeUpstream) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [r.body for r in up.requests if r.method == "POST"][-1][
        "messages"
    ]
    return messages


def test_a_repeated_paste_is_sent_once_and_the_receipt_says_what_was_saved(
    up: FakeUpstream,
) -> None:
    messages = [
        {"role": "system", "content": "You read logs."},
        {"role": "user", "content": f"Here is the log:\n\n{LOG}\n\nAnything odd?"},
        {"role": "assistant", "content": "Nothing odd so far."},
        {"role": "user", "content": f"Same log again:\n\n{LOG}\n\nWhich worker did batch 37?"},
    ]
    with _gateway(up) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=messages)  # type: ignore[arg-type]
        receipt_id = raw.headers["x-aicp-receipt-id"]
        with admin_client(gw.url, MASTER) as admin:
            receipt = admin.get(f"/v1/receipts/{receipt_id}").json()["receipt"]
            body = admin.get(f"/v1/receipts/{receipt_id}/body").json()
    sent = _sent(up)
    assert sum(m["content"].count("worker-1 processed batch 37") for m in sent) == 1
    assert "Which worker did batch 37?" in sent[-1]["content"]
    (record,) = receipt["compression"]
    assert record["tokens_after"] < record["tokens_before"] * 0.7
    assert "dedupe" in record["steps"]
    kept = json.loads(body["request"]["text"])
    assert kept["messages"] == messages  # the stored body is the client's


def test_an_old_history_is_trimmed_to_the_models_window(up: FakeUpstream) -> None:
    turns: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for i in range(30):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me more " * 40})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "here is more " * 40})
    turns.append({"role": "user", "content": "And the last question?"})
    with _gateway(up, context_tokens={"fake-model": 2048}, reserve_output_tokens=512) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
        client.chat.completions.create(model="m", messages=turns)  # type: ignore[arg-type]
    sent = _sent(up)
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[-1]["content"] == "And the last question?"
    assert len(sent) < len(turns) and sent[1]["role"] == "user"
    assert len(json.dumps(sent)) < 1536 * 4 * 1.3


def test_off_by_default(up: FakeUpstream) -> None:
    settings = make_settings(
        {
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]}],
        }
    )
    messages = [{"role": "user", "content": "a   b\n\n\n\n\nc"}]
    with GatewayServer(settings) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
        client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert _sent(up) == messages


def test_dropped_turns_are_summarised_through_the_configured_model(up: FakeUpstream) -> None:
    turns: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for i in range(20):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me more " * 40})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "here is more " * 40})
    turns.append({"role": "user", "content": "And the last question?"})
    settings = make_settings(
        {
            "providers": {
                "up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"},
                "cheap": {"type": "mock", "options": {"reply": "Earlier: twenty questions."}},
            },
            "models": [
                {"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]},
                {"name": "summariser", "deployments": [{"provider": "cheap", "model": "mock-1"}]},
            ],
            "receipts": {"bodies": "full"},
            "compression": {
                "enabled": True,
                "steps": ["dedupe", "summarise"],
                "context_tokens": {"fake-model": 2048},
                "reserve_output_tokens": 512,
                "summarise_with": "summariser",
            },
        }
    )
    with GatewayServer(settings) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=turns)  # type: ignore[arg-type]
        with admin_client(gw.url, "none") as admin:
            receipt = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}").json()
    sent = _sent(up)
    assert any("Earlier: twenty questions." in str(m["content"]) for m in sent)
    assert sent[-1]["content"] == "And the last question?" and len(sent) < len(turns)
    (record,) = receipt["receipt"]["compression"]
    assert record["summarised_by"] == "cheap/mock-1" and "summarise" in record["steps"]


def test_a_non_openai_model_near_its_budget_is_counted_by_its_provider(
    up: FakeUpstream,
) -> None:
    turns: list[dict[str, Any]] = []
    for i in range(12):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me more " * 30})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "here is more " * 30})
    turns.append({"role": "user", "content": "And the last question?"})
    settings = make_settings(
        {
            "providers": {
                "claude": {"type": "anthropic", "base_url": up.url, "api_key": "sk-ant-up"}
            },
            "models": [
                {"name": "m", "deployments": [{"provider": "claude", "model": "claude-haiku"}]}
            ],
            "receipts": {"bodies": "full"},
            "compression": {
                "enabled": True,
                "context_tokens": {"claude-haiku": 2048},
                "reserve_output_tokens": 256,
            },
        }
    )
    with GatewayServer(settings) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=turns)  # type: ignore[arg-type]
        with admin_client(gw.url, "none") as admin:
            receipt = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}").json()
    counted = [r for r in up.requests if r.path.endswith("/count_tokens")]
    assert len(counted) == 1
    (record,) = receipt["receipt"]["compression"]
    assert record["provider_count"]["tokens"] > 0 and record["exact"] is False
    assert record["tokens_after"] < record["tokens_before"]
