"""The eval set meets its targets, and its checks can fail."""

from __future__ import annotations

from aicp.compress.eval.checks import missing_facts, problems
from aicp.compress.eval.conversations import CLEAN, REPEATED, cases
from aicp.compress.eval.runner import REPEATED_TARGET, evaluate, kind_saved, main, missed_targets


async def test_the_eval_targets_are_met() -> None:
    outcomes = await evaluate()
    assert missed_targets(outcomes) == []
    assert kind_saved(outcomes, REPEATED) >= REPEATED_TARGET
    assert all(not o.missing for o in outcomes)
    assert all(o.unchanged for o in outcomes if o.case.kind == CLEAN)
    assert {o.case.protocol for o in outcomes} == {"openai", "anthropic"}


def test_the_eval_set_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    assert [c.body for c in cases(1)] == [c.body for c in cases(1)]
    assert [c.body for c in cases(1)] != [c.body for c in cases(2)]


def test_the_checks_find_orphan_tool_results_and_an_assistant_first() -> None:
    openai = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "c9", "content": "r"},
        ]
    }
    assert problems(openai, "openai")
    anthropic = {"messages": [{"role": "assistant", "content": "hi"}]}
    assert problems(anthropic, "anthropic") == ["the first message is not a user message"]
    body = {"messages": [{"role": "user", "content": "the code is 42"}]}
    assert missing_facts(body, "openai", ["code is 42", "code is 43"]) == ["code is 43"]


def test_main_exits_zero_when_the_targets_are_met(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "targets met" in out and "repeated" in out
