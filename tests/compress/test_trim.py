"""The trim step: oldest turns go first; system, tools, the last turn and tool pairs stay."""

from __future__ import annotations

import copy
import random
from typing import Any

from aicp.compress import compress_sync
from aicp.compress.eval import texts
from aicp.compress.eval.checks import problems
from aicp.compress.eval.conversations import TOOLS_OPENAI, Turn, render

STEPS = ["trim"]


def _history(protocol: str, turns: int = 12, calls: bool = False) -> dict[str, Any]:
    rng = random.Random(11)
    out: list[Turn] = []
    for k in range(turns):
        out.append(Turn("user", f"question {k}: {texts.prose(rng, 2)}"))
        if calls:
            out.append(Turn("call", f"f{k}.py", texts.python_module(rng, 2)))
        out.append(Turn("assistant", f"answer {k}: {texts.prose(rng, 4)}"))
    out.append(Turn("user", "final question"))
    return render(protocol, "SYSTEM RULES: be exact.", out, tools=calls)


def _tokens(body: dict[str, Any], protocol: str, model: str) -> int:
    return compress_sync(body, protocol, model, steps=[]).tokens_before


def test_under_budget_nothing_is_dropped() -> None:
    body = _history("openai")
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=10**6)
    assert result.body is body and not result.steps_applied and not result.over_budget


def test_without_a_budget_trim_does_nothing() -> None:
    body = _history("openai")
    assert not compress_sync(body, "openai", "gpt-4o", steps=STEPS).steps_applied


def test_oldest_turns_go_first_and_system_and_last_turn_stay() -> None:
    body = _history("openai")
    before = copy.deepcopy(body)
    budget = _tokens(body, "openai", "gpt-4o") // 2
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=budget)
    messages = result.body["messages"]
    assert result.tokens_after <= budget < result.tokens_before
    assert messages[0] == {"role": "system", "content": "SYSTEM RULES: be exact."}
    assert messages[-1] == {"role": "user", "content": "final question"}
    assert messages[1]["role"] == "user" and messages[1]["content"].startswith("question ")
    kept = [int(m["content"].split()[1].rstrip(":")) for m in messages[1:-1:2]]
    assert kept == list(range(12 - len(kept), 12))  # a suffix of the turns, in order
    (step,) = result.steps_applied
    assert step.changes["messages_dropped"] == len(body["messages"]) - len(messages)
    assert step.tokens_saved == result.tokens_before - result.tokens_after
    assert body == before


def test_openai_tool_calls_and_results_are_dropped_together() -> None:
    body = _history("openai", calls=True)
    total = _tokens(body, "openai", "gpt-4o")
    for share in (0.2, 0.35, 0.5, 0.7, 0.9):
        result = compress_sync(
            body, "openai", "gpt-4o", steps=STEPS, budget_tokens=int(total * share)
        )
        assert problems(result.body, "openai") == [], share
        assert result.body["tools"] is TOOLS_OPENAI
        assert result.tokens_after <= int(total * share)


def test_anthropic_never_starts_with_the_assistant_and_keeps_tool_pairs() -> None:
    body = _history("anthropic", calls=True)
    total = _tokens(body, "anthropic", "claude-sonnet-4-5")
    for budget in range(total // 10, total, total // 23):
        result = compress_sync(
            body, "anthropic", "claude-sonnet-4-5", steps=STEPS, budget_tokens=budget
        )
        assert result.body["messages"][0]["role"] == "user"
        assert isinstance(result.body["messages"][0]["content"], str)  # a question, not a result
        assert problems(result.body, "anthropic") == []
        assert result.body["system"] == body["system"]


def test_dropping_continues_until_a_user_turn_comes_first() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "u0 " * 50},
            {"role": "assistant", "content": "a0 " * 300},
            {"role": "user", "content": "u1 " * 50},
            {"role": "assistant", "content": "a1 " * 50},
            {"role": "user", "content": "last"},
        ]
    }
    total = _tokens(body, "anthropic", "claude-sonnet-4-5")
    # Dropping only "u0" would fit, but would leave the assistant first.
    result = compress_sync(
        body, "anthropic", "claude-sonnet-4-5", steps=STEPS, budget_tokens=total - 70
    )
    assert [m["content"][:2] for m in result.body["messages"]] == ["u1", "a1", "la"]


def test_a_last_turn_over_the_budget_is_kept_and_reported() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "old question"},
            {"role": "assistant", "content": "old answer"},
            {"role": "user", "content": "word " * 500},
        ]
    }
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=100)
    assert result.over_budget and result.receipt()["over_budget"] is True
    assert [m["content"][:5] for m in result.body["messages"]] == ["rules", "word "]


def test_the_last_agent_loop_is_trimmed_inside_when_it_alone_is_too_long() -> None:
    turns = [Turn("user", "fix the bug")]
    rng = random.Random(3)
    turns += [Turn("call", f"f{k}.py", texts.python_module(rng, 3)) for k in range(8)]
    body = render("openai", "rules", turns, tools=True)
    total = _tokens(body, "openai", "gpt-4o")
    for budget in range(total // 3, total, total // 41):
        result = compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=budget)
        messages = result.body["messages"]
        assert messages[1] == {"role": "user", "content": "fix the bug"}
        assert messages[-1] == body["messages"][-1]  # the newest tool result stays
        assert problems(result.body, "openai") == [] and not result.over_budget


def test_tool_definitions_count_towards_the_budget() -> None:
    body = _history("openai")
    with_tools = {**body, "tools": TOOLS_OPENAI}
    assert _tokens(with_tools, "openai", "gpt-4o") > _tokens(body, "openai", "gpt-4o") + 20
