"""The trim step: oldest turns go first; system, tools, the last turn and tool pairs stay."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest

from aicp.compress import TokenCounter, compress_sync
from aicp.compress import tokens as tokens_module
from aicp.compress.eval import texts
from aicp.compress.eval.checks import problems
from aicp.compress.eval.conversations import MODELS, TOOLS_OPENAI, Turn, cases, render

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


def _agent_loop(protocol: str) -> dict[str, Any]:
    """A question, then only tool calls and results: the last user turn is the first."""
    turns = [Turn("user", "fix the bug")]
    rng = random.Random(3)
    turns += [Turn("call", f"f{k}.py", texts.python_module(rng, 3)) for k in range(8)]
    return render(protocol, "rules", turns, tools=True)


def test_the_last_agent_loop_is_trimmed_inside_when_it_alone_is_too_long() -> None:
    body = _agent_loop("openai")
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


@pytest.mark.parametrize("steps", [STEPS, ["whitespace", "dedupe", "trim"]])
def test_auto_counting_trims_exactly_as_counting_everything_does(steps: list[str]) -> None:
    # Over the bound, "auto" normalises, deduplicates and counts newest first and stops
    # at the first turn that does not fit: the request sent must be the same.
    bodies = [(c.protocol, c.model, c.body) for c in cases(3)]
    bodies += [(p, MODELS[p], _history(p, turns=20)) for p in MODELS]
    bodies += [(p, MODELS[p], _agent_loop(p)) for p in MODELS]
    for protocol, model, body in bodies:
        total = _tokens(body, protocol, model)
        for share in range(1, 13):
            exact = compress_sync(
                body, protocol, model, steps=steps, budget_tokens=total * share // 12
            )
            # The budget the result fills exactly, too: a turn that just fits is kept.
            for budget in (total * share // 12, exact.tokens_after):
                _same_when_auto(body, protocol, model, steps, budget)


def _same_when_auto(
    body: dict[str, Any], protocol: str, model: str, steps: list[str], budget: int
) -> None:
    auto = compress_sync(body, protocol, model, steps=steps, budget_tokens=budget, counting="auto")
    exact = compress_sync(body, protocol, model, steps=steps, budget_tokens=budget)
    assert auto.body == exact.body, (protocol, budget)
    # and it took the newest-first walk, not the counting of everything
    assert not auto.steps_applied or "in part estimated" in auto.counting, (protocol, budget)
    assert auto.tokens_after == exact.tokens_after == _tokens(auto.body, protocol, model)
    assert auto.over_budget == exact.over_budget == (auto.tokens_after > budget)
    saved = sum(s.tokens_saved for s in auto.steps_applied)
    assert saved == auto.tokens_before - auto.tokens_after


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts bpe-openai is asked to count from now on (counts stay real)."""
    seen: list[str] = []
    real = tokens_module._native_counter

    def native(name: str) -> Callable[[str], int] | None:
        count = real(name)
        assert count is not None

        def recorded(text: str) -> int:
            seen.append(text)
            return count(text)

        return recorded

    monkeypatch.setattr(tokens_module, "_native_counter", native)
    return seen


def test_auto_counting_tokenizes_the_kept_turns_and_not_the_older_dropped_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = _history("openai", turns=30)
    budget = _tokens(body, "openai", "gpt-4o") // 3
    seen = _recording(monkeypatch)
    result = compress_sync(
        body,
        "openai",
        "gpt-4o",
        steps=STEPS,
        budget_tokens=budget,
        counting="auto",
        counter=TokenCounter(),
    )
    kept = result.body["messages"]
    dropped = [m for m in body["messages"] if m not in kept]
    assert result.exact and result.tokens_after <= budget and len(dropped) > 20
    tokenized = set(seen)
    assert {m["content"] for m in kept} <= tokenized  # what is sent is counted exactly
    # Tokenized among the dropped: the newest that did not fit, and at most an answer
    # after it (that fitted, but was dropped for the history to start with a question).
    newest = {m["content"] for m in dropped[-2:]}
    assert tokenized & newest and not tokenized & {m["content"] for m in dropped[:-2]}
    assert "in part estimated" in result.counting
