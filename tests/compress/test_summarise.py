"""The summarise step: turns that trimming would drop are replaced by a summary."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aicp.compress import compress, compress_sync
from aicp.compress.eval.checks import problems
from aicp.compress.trim import SUMMARY_HEADER

STEPS = ["whitespace", "dedupe", "trim", "summarise"]


def _body(protocol: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for k in range(10):
        messages += [
            {"role": "user", "content": f"turn {k}: " + "words of the question " * 20},
            {"role": "assistant", "content": f"reply {k}: " + "words of the answer " * 30},
        ]
    messages.append({"role": "user", "content": "what did I tell you first?"})
    if protocol == "openai":
        return {"messages": [{"role": "system", "content": "rules"}, *messages]}
    return {"system": "rules", "messages": messages}


class FakeSummariser:
    def __init__(self, text: str = "The user said the code word is ORCHID.") -> None:
        self.text = text
        self.calls: list[list[dict[str, Any]]] = []

    async def __call__(self, messages: list[dict[str, Any]]) -> str:
        self.calls.append(copy.deepcopy(messages))
        return self.text


@pytest.mark.parametrize(
    ("protocol", "model"), [("openai", "gpt-4o"), ("anthropic", "claude-opus-4")]
)
async def test_dropped_turns_are_replaced_by_the_summary(protocol: str, model: str) -> None:
    body = _body(protocol)
    before = copy.deepcopy(body)
    total = compress_sync(body, protocol, model, steps=[]).tokens_before
    summarise = FakeSummariser()
    result = await compress(
        body, protocol, model, steps=STEPS, budget_tokens=total // 3, summarise=summarise
    )
    (dropped,) = summarise.calls
    assert dropped[0]["content"].startswith("turn 0:")
    assert all(m in body["messages"] for m in dropped)
    first_user = next(m for m in result.body["messages"] if m["role"] == "user")
    assert first_user["content"].startswith(SUMMARY_HEADER.format(n=len(dropped)))
    assert "ORCHID" in first_user["content"]
    assert result.tokens_after <= total // 3
    assert [s.name for s in result.steps_applied] == ["summarise"]
    assert result.steps_applied[0].changes["messages_summarised"] == len(dropped)
    assert problems(result.body, protocol) == []
    assert body == before


async def test_the_summariser_is_not_called_when_everything_fits() -> None:
    summarise = FakeSummariser()
    body = _body("openai")
    result = await compress(
        body, "openai", "gpt-4o", steps=STEPS, budget_tokens=10**6, summarise=summarise
    )
    assert summarise.calls == [] and result.body is body and not result.steps_applied


async def test_a_failing_summariser_falls_back_to_trimming() -> None:
    async def broken(messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("model down")

    body = _body("anthropic")
    total = compress_sync(body, "anthropic", "claude-opus-4", steps=[]).tokens_before
    result = await compress(
        body, "anthropic", "claude-opus-4", steps=STEPS, budget_tokens=total // 2, summarise=broken
    )
    assert [s.name for s in result.steps_applied] == ["trim"]
    assert result.notes and "RuntimeError" in result.notes[0]
    assert result.tokens_after <= total // 2


async def test_a_summary_longer_than_what_it_replaces_is_not_used() -> None:
    body = _body("openai")
    total = compress_sync(body, "openai", "gpt-4o", steps=[]).tokens_before
    summarise = FakeSummariser("long " * 5000)
    result = await compress(
        body, "openai", "gpt-4o", steps=STEPS, budget_tokens=total - 50, summarise=summarise
    )
    assert [s.name for s in result.steps_applied] == ["trim"]
    assert all("long long" not in str(m["content"]) for m in result.body["messages"])


async def test_summarise_needs_a_summariser_and_the_async_entry_point() -> None:
    with pytest.raises(ValueError, match="summariser"):
        await compress({"messages": []}, "openai", "gpt-4o", steps=STEPS, budget_tokens=10)
    with pytest.raises(ValueError, match=r"compress\(\)"):
        compress_sync({"messages": []}, "openai", "gpt-4o", steps=STEPS, budget_tokens=10)
