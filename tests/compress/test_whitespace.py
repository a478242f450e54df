"""The whitespace step: prose normalised, code and tool output left exactly as they were."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aicp.compress import compress_sync
from aicp.compress.whitespace import normalise

STEPS = ["whitespace"]


def test_runs_of_spaces_and_tabs_in_prose_become_one_space() -> None:
    assert normalise("Hello   world,\t\tfriend.") == "Hello world, friend."


def test_trailing_spaces_go_and_three_blank_lines_become_one() -> None:
    assert normalise("one  \n\n\n\ntwo\t\n") == "one\n\ntwo\n"


def test_two_blank_lines_stay() -> None:
    assert normalise("one\n\n\ntwo  three") == "one\n\n\ntwo three"


@pytest.mark.parametrize(
    "code",
    [
        "```python\nx  =   1\n\n\n\n\nprint( x )  \n```",
        "~~~\nSELECT  a,   b\n\n\n\nFROM t\n~~~",
        "````md\n```\ninner  fence\n```\n\n\n\n  kept    too\n````",
        "```\nunclosed    fence\n\n\n\n\nruns  to the end  ",
    ],
)
def test_fenced_code_is_untouched(code: str) -> None:
    text = f"Look  at this:\n\n{code}"
    out = normalise(text)
    assert out.endswith(code)
    assert out.startswith("Look at this:")


def test_indented_code_and_yaml_paragraphs_are_untouched() -> None:
    python = "def f(x):\n    if x:  # two spaces\n        return  x\n    return None"
    yaml = "server:\n  port:   8080\n  hosts:\n    - a"
    assert normalise(python) is python
    assert normalise(yaml) is yaml
    mixed = f"Why  does this fail?\n\n{python}"
    assert normalise(mixed) == f"Why does this fail?\n\n{python}"


def test_aligned_columns_and_inline_code_keep_their_spacing() -> None:
    table = "name      value\nretries   3\ntimeout   30s"
    assert normalise(table) is table
    assert normalise("Run `a  &&  b`  now.") == "Run `a  &&  b` now."


def test_blank_lines_next_to_code_are_kept() -> None:
    text = "Intro.\n\n\n\n\n    indented code\n"
    assert normalise(text) == text


def test_unchanged_text_is_the_same_object() -> None:
    text = "Nothing to fix here.\n\nReally."
    assert normalise(text) is text


def test_tool_results_images_and_call_arguments_are_not_touched() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    output = "col1    col2\n\n\n\n\nrow   1  "
    arguments = '{"q":  "two  spaces"}'
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "See  this."}, image]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": output},
        ]
    }
    before = copy.deepcopy(body)
    result = compress_sync(body, "openai", "gpt-4o", steps=STEPS)
    messages = result.body["messages"]
    assert messages[0]["content"][0]["text"] == "See this."
    assert messages[0]["content"][1] is image
    assert messages[1] is body["messages"][1] and messages[2] is body["messages"][2]
    assert body == before
    assert [s.name for s in result.steps_applied] == ["whitespace"]


def test_anthropic_system_and_text_blocks_are_normalised_tool_results_are_not() -> None:
    result_block = {"type": "tool_result", "tool_use_id": "t1", "content": "a    b  "}
    body: dict[str, Any] = {
        "system": [{"type": "text", "text": "Be   brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Hi   there"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm   so", "signature": "sig"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": "a   b"}},
                ],
            },
            {"role": "user", "content": [result_block, {"type": "text", "text": "and  this"}]},
        ],
    }
    before = copy.deepcopy(body)
    out = compress_sync(body, "anthropic", "claude-sonnet-4-5", steps=STEPS).body
    assert out["system"][0] == {
        "type": "text",
        "text": "Be brief.",
        "cache_control": {"type": "ephemeral"},
    }
    assert out["messages"][0]["content"] == "Hi there"
    assert out["messages"][1] is body["messages"][1]  # thinking and tool_use untouched
    assert out["messages"][2]["content"][0] is result_block
    assert out["messages"][2]["content"][1]["text"] == "and this"
    assert body == before
