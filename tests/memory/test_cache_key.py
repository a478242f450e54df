from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from aicp.memory.cache_key import exact_key, semantic_request

CHAT: dict[str, Any] = {
    "model": "fast",
    "messages": [
        {"role": "system", "content": "You answer questions about our catalogue."},
        {"role": "user", "content": "Do you sell hiking boots?"},
        {"role": "assistant", "content": "Yes, the Trailmaster GTX (id 4471)."},
        {"role": "user", "content": "How heavy is it?"},
    ],
    "temperature": 0.2,
}
RESPONSES: dict[str, Any] = {
    "model": "fast",
    "input": "How heavy is it?",
    "instructions": "Be brief.",
}
ANTHROPIC: dict[str, Any] = {
    "model": "claude",
    "system": "You answer questions about our catalogue.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "How heavy is it?"}]}],
    "max_tokens": 256,
}


def key(body: dict[str, Any], protocol: str = "openai", model: str = "gpt-4o-mini") -> str:
    return exact_key(protocol, "chat", model, body)


def changed(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(body), **fields}


def test_the_key_is_a_sha256_hex_digest_that_ignores_key_order() -> None:
    reordered = dict(reversed(list(CHAT.items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in CHAT["messages"]]
    assert key(CHAT) == key(reordered)
    assert len(key(CHAT)) == 64 and int(key(CHAT), 16) >= 0


@pytest.mark.parametrize(
    "fields",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "u-42"},
        {"metadata": {"aicp_task_class": "support", "team": "a"}},
        {"aicp_trace": "on"},
        {"store": True},
        {"prompt_cache_key": "p1", "safety_identifier": "s1"},
        {"model": "another-alias-of-the-same-deployment"},
    ],
)
def test_delivery_and_bookkeeping_fields_do_not_change_the_key(fields: dict[str, Any]) -> None:
    assert key(changed(CHAT, **fields)) == key(CHAT)


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0.7},
        {"top_p": 0.5},
        {"max_tokens": 100},
        {"max_completion_tokens": 100},
        {"stop": ["\n"]},
        {"seed": 7},
        {"n": 2},
        {"presence_penalty": 0.5},
        {"frequency_penalty": 0.5},
        {"logit_bias": {"50256": -100}},
        {"logprobs": True, "top_logprobs": 3},
        {"tools": [{"type": "function", "function": {"name": "weight", "parameters": {}}}]},
        {"tool_choice": "required"},
        {"parallel_tool_calls": False},
        {"response_format": {"type": "json_object"}},
        {"reasoning_effort": "high"},
        {"messages": [*CHAT["messages"][:-1], {"role": "user", "content": "How tall is it?"}]},
        {"messages": CHAT["messages"][1:]},
        {"a_field_we_have_never_heard_of": 1},
    ],
)
def test_each_output_changing_field_of_openai_chat_changes_the_key(fields: dict[str, Any]) -> None:
    assert key(changed(CHAT, **fields)) != key(CHAT)


@pytest.mark.parametrize(
    "fields",
    [
        {"input": "How tall is it?"},
        {"input": [{"role": "user", "content": "How heavy is it?"}]},
        {"instructions": "Be thorough."},
        {"text": {"format": {"type": "json_object"}}},
        {"max_output_tokens": 50},
        {"reasoning": {"effort": "low"}},
        {"previous_response_id": "resp_1"},
    ],
)
def test_each_output_changing_field_of_responses_changes_the_key(fields: dict[str, Any]) -> None:
    base = key(RESPONSES, "openai-responses")
    assert key(changed(RESPONSES, **fields), "openai-responses") != base


@pytest.mark.parametrize(
    "fields",
    [
        {"system": "Be brief."},
        {"max_tokens": 512},
        {"top_k": 5},
        {"stop_sequences": ["END"]},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"tools": [{"name": "weight", "input_schema": {"type": "object"}}]},
        {"tool_choice": {"type": "any"}},
        {"messages": [{"role": "user", "content": "How heavy is it?"}]},
    ],
)
def test_each_output_changing_field_of_anthropic_changes_the_key(fields: dict[str, Any]) -> None:
    base = key(ANTHROPIC, "anthropic")
    assert key(changed(ANTHROPIC, **fields), "anthropic") != base
    assert key(changed(ANTHROPIC, metadata={"user_id": "u1"}, stream=True), "anthropic") == base


def test_protocol_operation_and_upstream_model_are_part_of_the_key() -> None:
    base = exact_key("openai", "chat", "gpt-4o-mini", CHAT)
    assert exact_key("openai", "chat", "gpt-4o", CHAT) != base
    assert exact_key("openai-responses", "chat", "gpt-4o-mini", CHAT) != base
    assert exact_key("openai", "embeddings", "gpt-4o-mini", CHAT) != base


def test_equal_values_written_differently_hash_equally() -> None:
    assert key(changed(CHAT, temperature=1.0)) == key(changed(CHAT, temperature=1))
    # `max_tokens` is OpenAI's older name for `max_completion_tokens`; not Anthropic's.
    assert key(changed(CHAT, max_tokens=9)) == key(changed(CHAT, max_completion_tokens=9))
    both = changed(CHAT, max_tokens=9, max_completion_tokens=10)
    assert key(both) != key(changed(CHAT, max_completion_tokens=10))


def test_a_typical_body_is_hashed_in_well_under_the_miss_budget() -> None:
    body = changed(CHAT, messages=CHAT["messages"] * 4, stream=True, user="u-1")
    key(body)
    started = time.perf_counter()
    for _ in range(2000):
        key(body)
    per_call = (time.perf_counter() - started) / 2000
    assert per_call < 50e-6  # the whole miss path may add 0.05 ms; measured ~5 µs


def test_the_semantic_text_is_the_last_user_turn_and_the_rest_is_context() -> None:
    found = semantic_request("openai", "chat", "gpt-4o-mini", CHAT)
    assert found is not None and found.text == "How heavy is it?"
    again = semantic_request("openai", "chat", "gpt-4o-mini", changed(CHAT, stream=True))
    assert again == found


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": [{"role": "system", "content": "Be rude."}, *CHAT["messages"][1:]]},
        {"messages": [CHAT["messages"][0], CHAT["messages"][-1]]},
        {"temperature": 0.9},
        {"tools": [{"type": "function", "function": {"name": "weight", "parameters": {}}}]},
    ],
)
def test_the_context_fingerprint_covers_everything_but_the_last_user_turn(
    fields: dict[str, Any],
) -> None:
    base = semantic_request("openai", "chat", "gpt-4o-mini", CHAT)
    other = semantic_request("openai", "chat", "gpt-4o-mini", changed(CHAT, **fields))
    assert base is not None and other is not None
    assert other.text == base.text and other.context != base.context


def test_the_same_question_in_another_model_has_another_context() -> None:
    a = semantic_request("openai", "chat", "gpt-4o-mini", CHAT)
    b = semantic_request("openai", "chat", "gpt-4o", CHAT)
    assert a is not None and b is not None and a.context != b.context


def test_responses_and_anthropic_requests_have_semantic_content() -> None:
    plain = semantic_request("openai-responses", "chat", "m", RESPONSES)
    part = {"type": "input_text", "text": "How heavy is it?"}
    listed = semantic_request(
        "openai-responses",
        "chat",
        "m",
        changed(RESPONSES, input=[{"role": "user", "content": [part]}]),
    )
    claude = semantic_request("anthropic", "chat", "m", ANTHROPIC)
    assert plain is not None and listed is not None and claude is not None
    assert plain.text == listed.text == claude.text == "How heavy is it?"
    assert plain.context != claude.context


@pytest.mark.parametrize(
    ("protocol", "operation", "body"),
    [
        ("openai", "embeddings", {"input": "hello"}),
        ("openai", "chat", {"messages": []}),
        ("openai", "chat", {"messages": [{"role": "assistant", "content": "Hi"}]}),
        ("openai", "chat", {"messages": [{"role": "tool", "content": "42", "tool_call_id": "1"}]}),
        (
            "openai",
            "chat",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {"type": "image_url", "image_url": {"url": "data:,"}},
                        ],
                    }
                ]
            },
        ),
        (
            "anthropic",
            "chat",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "1"}],
                    }
                ]
            },
        ),
        ("openai", "chat", {"messages": [{"role": "user", "content": "x" * 1001}]}),
        ("openai", "chat", {"messages": [{"role": "user", "content": "   "}]}),
    ],
)
def test_requests_the_semantic_cache_cannot_judge_have_no_semantic_content(
    protocol: str, operation: str, body: dict[str, Any]
) -> None:
    assert semantic_request(protocol, operation, "m", body) is None
