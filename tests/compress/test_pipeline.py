"""compress and compress_sync: step names, results, receipts, and bodies never mutated."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from aicp.compress import STEP_NAMES, TokenCounter, compress, compress_sync
from aicp.compress.eval.conversations import cases, extractive_summary

ALL = ["whitespace", "dedupe", "trim"]


def _tidy_body() -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is a monad?"},
            {"role": "assistant", "content": "A way to chain computations."},
            {"role": "user", "content": "Show one in Python.\n\n```python\nx  =  1\n```"},
        ]
    }


@pytest.mark.parametrize(
    ("protocol", "model"), [("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5")]
)
def test_nothing_to_do_changes_nothing(protocol: str, model: str) -> None:
    body = _tidy_body()
    if protocol == "anthropic":
        body = {"system": "Be brief.", "messages": body["messages"][1:]}
    result = compress_sync(body, protocol, model, steps=ALL, budget_tokens=100_000)
    assert result.body is body
    assert result.steps_applied == [] and not result.changed
    assert result.tokens_after == result.tokens_before > 0
    assert result.receipt()["steps"] == {}


@pytest.mark.parametrize("case", list(cases(3)), ids=lambda c: f"{c.protocol}-{c.name}")
async def test_no_input_body_is_ever_mutated(case: Any) -> None:
    body = case.body
    before = copy.deepcopy(body)
    budget = compress_sync(body, case.protocol, case.model, steps=[]).tokens_before // 3
    await compress(
        body,
        case.protocol,
        case.model,
        steps=STEP_NAMES,
        budget_tokens=budget,
        summarise=extractive_summary,
    )
    assert body == before


def test_step_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown compression steps \\['squash'\\]"):
        compress_sync(_tidy_body(), "openai", "gpt-4o", steps=["trim", "squash"])
    with pytest.raises(TypeError):
        compress_sync(_tidy_body(), "openai", "gpt-4o", steps="trim")
    with pytest.raises(ValueError, match="unknown protocol"):
        compress_sync(_tidy_body(), "gemini", "gpt-4o", steps=ALL)


def test_steps_run_in_one_order_whatever_order_they_are_named_in() -> None:
    case = next(c for c in cases() if c.name == "messy_notes_pasted_again")
    one = compress_sync(case.body, case.protocol, case.model, steps=ALL)
    other = compress_sync(case.body, case.protocol, case.model, steps=list(reversed(ALL)))
    assert one.body == other.body
    assert [s.name for s in one.steps_applied] == ["whitespace", "dedupe"]


def test_only_the_named_steps_run() -> None:
    case = next(c for c in cases() if c.name == "messy_notes_pasted_again")
    result = compress_sync(case.body, case.protocol, case.model, steps=["dedupe"])
    assert [s.name for s in result.steps_applied] == ["dedupe"]
    assert "  " in json.dumps(result.body)  # whitespace was not normalised


def test_per_step_savings_add_up_and_the_receipt_is_json() -> None:
    case = next(c for c in cases() if c.name == "log_pasted_three_times")
    result = compress_sync(case.body, case.protocol, case.model, steps=ALL, budget_tokens=2_000)
    saved = sum(s.tokens_saved for s in result.steps_applied)
    assert saved == result.tokens_before - result.tokens_after > 0
    receipt = json.loads(json.dumps(result.receipt()))
    assert receipt["tokens_before"] == result.tokens_before
    assert receipt["exact"] is True and receipt["counting"] == "o200k_base"
    assert set(receipt["steps"]) == {"dedupe", "trim"}


def test_the_counted_total_matches_a_fresh_count_of_the_result() -> None:
    for case in cases(5):
        result = compress_sync(case.body, case.protocol, case.model, steps=ALL, budget_tokens=3_000)
        fresh = compress_sync(result.body, case.protocol, case.model, steps=[])
        assert fresh.tokens_before == result.tokens_after, case.name


def test_auto_counting_estimates_only_when_the_request_surely_fits() -> None:
    case = next(c for c in cases() if c.name == "file_pasted_again" and c.protocol == "openai")
    under = compress_sync(
        case.body, case.protocol, case.model, steps=ALL, counting="auto", budget_tokens=100_000
    )
    exact = compress_sync(case.body, case.protocol, case.model, steps=ALL, budget_tokens=100_000)
    assert not under.exact and "chars/4" in under.counting
    assert under.body == exact.body
    assert abs(under.tokens_before - exact.tokens_before) < exact.tokens_before * 0.2
    tight = exact.tokens_after - 200
    over = compress_sync(
        case.body, case.protocol, case.model, steps=ALL, counting="auto", budget_tokens=tight
    )
    counted = compress_sync(case.body, case.protocol, case.model, steps=ALL, budget_tokens=tight)
    assert over.exact and over.tokens_after <= tight
    assert (over.body, over.tokens_after) == (counted.body, counted.tokens_after)
    # The turns dropped were not tokenized (nor deduplicated: the copy in them went
    # with them), so the total before is in part an estimate.
    assert over.counting == "o200k_base (tokens_before in part estimated)"
    assert abs(over.tokens_before - counted.tokens_before) < counted.tokens_before * 0.1
    saved = sum(s.tokens_saved for s in over.steps_applied)
    assert saved == over.tokens_before - over.tokens_after
    assert [s.name for s in counted.steps_applied] == ["dedupe", "trim"]
    assert [s.name for s in over.steps_applied] == ["trim"]


def test_a_shared_counter_gives_the_same_counts() -> None:
    counter = TokenCounter()
    for case in cases():
        fresh = compress_sync(case.body, case.protocol, case.model, steps=ALL)
        shared = compress_sync(case.body, case.protocol, case.model, steps=ALL, counter=counter)
        assert (shared.tokens_before, shared.tokens_after) == (
            fresh.tokens_before,
            fresh.tokens_after,
        )


def test_system_messages_anywhere_are_kept_by_trimming() -> None:
    body = _tidy_body()
    body["messages"].insert(2, {"role": "developer", "content": "Answer in French."})
    body["messages"][1]["content"] = "long " * 400
    body["messages"].insert(3, {"role": "user", "content": "next"})
    result = compress_sync(body, "openai", "gpt-4o", steps=ALL, budget_tokens=120)
    roles = [m["role"] for m in result.body["messages"]]
    assert roles[:2] == ["system", "developer"] and "long " * 5 not in json.dumps(result.body)
