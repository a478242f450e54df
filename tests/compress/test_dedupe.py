"""The dedupe step: earlier copies of pasted context become a marker, the latest stays."""

from __future__ import annotations

import copy
import random
from typing import Any

from aicp.compress import compress_sync
from aicp.compress.dedupe import MARKER
from aicp.compress.eval import texts
from aicp.compress.eval.checks import problems

STEPS = ["dedupe"]


def _file(seed: int = 1, functions: int = 6, fact: str = "LIMIT = 5") -> str:
    return f"```python\n{texts.python_module(random.Random(seed), functions, fact)}```"


def _body(*contents: str) -> dict[str, Any]:
    roles = ["user", "assistant"]
    return {"messages": [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]}


def _texts(result_body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in result_body["messages"]]


def test_an_earlier_copy_becomes_a_marker_and_the_latest_copy_stays() -> None:
    code = _file()
    body = _body(f"Here:\n\n{code}\n\nWhat is LIMIT?", "It is five.", f"Again:\n{code}\nAnd now?")
    before = copy.deepcopy(body)
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS)
    first, answer, last = _texts(result.body)
    assert first == f"Here:\n\n{MARKER}\n\nWhat is LIMIT?"
    assert answer == "It is five." and last == body["messages"][2]["content"]
    assert result.tokens_after < result.tokens_before * 0.6
    (step,) = result.steps_applied
    assert step.name == "dedupe" and step.tokens_saved == result.tokens_before - result.tokens_after
    assert step.changes == {"blocks_removed": 1}
    assert body == before


def test_three_copies_leave_one() -> None:
    log = texts.log_lines(random.Random(2), 12)
    body = _body(log, "ok", f"{log}\n\nagain", "ok", f"last:\n\n{log}")
    out = _texts(compress_sync(body, "openai", "gpt-4o", steps=STEPS).body)
    assert out[0] == MARKER and out[2] == f"{MARKER}\n\nagain"
    assert out[4] == f"last:\n\n{log}"


def test_blocks_under_the_minimum_stay_and_the_minimum_is_configurable() -> None:
    block = "A short paragraph that is pasted twice but is under two hundred chars."
    body = _body(f"{block}\n\nfirst", "ok", f"{block}\n\nsecond")
    assert not compress_sync(body, "openai", "gpt-4o", steps=STEPS).steps_applied
    small = compress_sync(body, "openai", "gpt-4o", steps=STEPS, min_block_chars=50)
    assert _texts(small.body)[0] == f"{MARKER}\n\nfirst"


def test_only_the_unchanged_parts_of_an_edited_file_are_removed() -> None:
    old, new = _file(3, 8, "BATCH = 10"), _file(3, 8, "BATCH = 90")
    body = _body(f"v1:\n\n{old}", "ok", f"v2:\n\n{new}")
    out = _texts(compress_sync(body, "openai", "gpt-4o", steps=STEPS).body)
    assert "BATCH = 10" in out[0] and MARKER in out[0]
    assert out[2] == f"v2:\n\n{new}"


def test_paragraphs_found_in_different_later_messages_are_not_a_block() -> None:
    rng = random.Random(4)
    a, b = texts.prose(rng, 2), texts.prose(rng, 2)
    assert 100 < len(a) < 200 and 100 < len(b) < 200
    body = _body(f"{a}\n\n{b}", "ok", f"{a}\n\nthen", "ok", f"{b}\n\nthen")
    assert not compress_sync(body, "openai", "gpt-4o", steps=STEPS).steps_applied


def test_a_message_sent_twice_in_a_row_is_sent_once() -> None:
    body = _body("hello there", "hi")
    body["messages"].insert(0, dict(body["messages"][0]))
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS)
    assert _texts(result.body) == ["hello there", "hi"]
    assert result.steps_applied[0].changes == {"messages_removed": 1}


def test_identical_tool_calls_in_a_row_are_kept() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    body = {"messages": [{"role": "user", "content": "go"}, call, dict(call)]}
    assert not compress_sync(body, "openai", "gpt-4o", steps=STEPS).steps_applied


def test_repeated_tool_results_keep_their_ids_and_pairs() -> None:
    code = texts.python_module(random.Random(5), 6)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "read it twice"}]}
    for n in (1, 2):
        body["messages"] += [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"t{n}", "name": "read", "input": {"path": "a.py"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": code}],
            },
        ]
    result = compress_sync(body, "anthropic", "claude-sonnet-4-5", steps=STEPS)
    messages = result.body["messages"]
    # The file's final line break stays: spans leave out the line breaks around them.
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": f"{MARKER}\n"}
    ]
    assert messages[4]["content"][0]["content"] == code
    assert messages[1] is body["messages"][1]
    assert problems(result.body, "anthropic") == []


def test_openai_tool_messages_are_deduplicated_too() -> None:
    code = texts.python_module(random.Random(6), 6)
    calls = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"c{n}", "type": "function", "function": {"name": "read", "arguments": "{}"}}
            ],
        }
        for n in (1, 2)
    ]
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            calls[0],
            {"role": "tool", "tool_call_id": "c1", "content": code},
            calls[1],
            {"role": "tool", "tool_call_id": "c2", "content": code},
        ]
    }
    out = compress_sync(body, "openai", "gpt-4o", steps=STEPS).body["messages"]
    assert out[2] == {"role": "tool", "tool_call_id": "c1", "content": f"{MARKER}\n"}
    assert out[4]["content"] == code


def test_system_prompts_are_never_deduplicated() -> None:
    doc = texts.markdown_document(random.Random(7), 3)
    body = {
        "messages": [
            {"role": "system", "content": doc},
            {"role": "user", "content": f"{doc}\n\nSummarise."},
        ]
    }
    assert not compress_sync(body, "openai", "gpt-4o", steps=STEPS).steps_applied
