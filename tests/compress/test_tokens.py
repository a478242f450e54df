"""Token counts: exact for OpenAI's encodings, estimated elsewhere, bpe-openai loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aicp.compress import TokenCounter, compress_sync, encoding_for_model
from aicp.compress import tokens as tokens_module

# Values from OpenAI's token-counting guide, which compares them with tiktoken.
KNOWN = [
    ("hello world", 2, 2),
    ("The quick brown fox jumps over the lazy dog.", 10, 10),
    ("antidisestablishmentarianism", 6, 6),
    ("2 + 2 = 4", 7, 7),
    ("お誕生日おめでとう", 9, 8),
    ("def f(x):\n    return x * 2\n", 11, 11),
]


@pytest.mark.parametrize(("text", "cl100k", "o200k"), KNOWN)
def test_exact_counts_of_fixed_strings(text: str, cl100k: int, o200k: int) -> None:
    counter = TokenCounter()
    assert counter.count(text, "gpt-4") == cl100k
    assert counter.count(text, "gpt-4o") == o200k


def test_hello_world_is_two_tokens_in_cl100k() -> None:
    assert TokenCounter(cache_size=0).count("hello world", "gpt-3.5-turbo") == 2


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1-nano",
        "o1",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "openai/gpt-4o",
        "ft:gpt-4o-mini:acme::abc123",
        "GPT-4O",
    ],
)
def test_newer_openai_models_use_o200k(model: str) -> None:
    encoding = encoding_for_model(model)
    assert (encoding.name, encoding.native) == ("o200k_base", True)


@pytest.mark.parametrize(
    "model", ["gpt-4", "gpt-4-turbo", "gpt-4-0613", "gpt-3.5-turbo", "gpt-35-turbo"]
)
def test_older_openai_models_use_cl100k(model: str) -> None:
    encoding = encoding_for_model(model)
    assert (encoding.name, encoding.native) == ("cl100k_base", True)


def test_other_providers_are_estimated_from_o200k_with_a_factor() -> None:
    claude = encoding_for_model("claude-sonnet-4-5")
    assert (claude.name, claude.factor, claude.native) == ("o200k_base", 1.2, False)
    assert encoding_for_model("us.anthropic.claude-3-5-sonnet-v2:0").factor == 1.2
    assert encoding_for_model("llama-3.1-70b").factor == 1.1
    text = "The quick brown fox jumps over the lazy dog."
    assert TokenCounter().count(text, "claude-sonnet-4-5") == 12  # ceil(10 x 1.2)


def test_openai_message_overhead_matches_the_guide() -> None:
    # The guide's example conversation: the API reported 129 prompt tokens on gpt-4 and
    # 124 on gpt-4o for it.
    messages = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that "
            "translates corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have "
            "more bandwidth to touch base on opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the "
            "ocean for the client deliverable.",
        },
    ]
    body = {"messages": messages}
    assert compress_sync(body, "openai", "gpt-4", steps=[]).tokens_before == 129
    assert compress_sync(body, "openai", "gpt-4o", steps=[]).tokens_before == 124


def test_tool_definitions_are_counted_as_the_guide_does() -> None:
    # The guide's weather tool: 105 prompt tokens on gpt-4, 101 on gpt-4o.
    parameters = {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            },
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    }
    function = {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": parameters,
    }
    body = {
        "messages": [
            {
                "role": "system",
                "content": "You are a helpful assistant that can answer to "
                "questions about the weather.",
            },
            {"role": "user", "content": "What's the weather like in San Francisco?"},
        ],
        "tools": [{"type": "function", "function": function}],
    }
    assert compress_sync(body, "openai", "gpt-4", steps=[]).tokens_before == 105
    assert compress_sync(body, "openai", "gpt-4o", steps=[]).tokens_before == 101


def test_each_distinct_text_is_tokenized_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def native(name: str):  # type: ignore[no-untyped-def]
        def count(text: str) -> int:
            seen.append(text)
            return len(text.split())

        return count

    monkeypatch.setattr(tokens_module, "_native_counter", native)
    counter = TokenCounter()
    body = {"messages": [{"role": "user", "content": "same words here"}] * 3}
    first = compress_sync(body, "openai", "gpt-4o", steps=[], counter=counter)
    again = compress_sync(body, "openai", "gpt-4o", steps=[], counter=counter)
    assert first.tokens_before == again.tokens_before
    assert seen.count("same words here") == 1


def test_the_cache_forgets_the_least_recently_used_text(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return 1

    monkeypatch.setattr(tokens_module, "_native_counter", lambda name: count)
    counting = TokenCounter(cache_size=2).bind("gpt-4o")
    for text in ["a", "b", "a", "c", "a", "b"]:
        counting.count(text)
    assert seen == ["a", "b", "c", "b"]  # "a" stayed (used recently), "b" was evicted


def test_without_bpe_openai_counts_are_estimates_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "bpe_openai._bindings", None)  # the import fails
    body = {"messages": [{"role": "user", "content": "x" * 400}]}
    result = compress_sync(body, "openai", "gpt-4o", steps=[], counter=TokenCounter())
    assert not result.exact
    assert "chars/4" in result.counting and "not installed" in result.counting
    assert any("bpe-openai" in note for note in result.notes)
    assert result.tokens_before == 100 + 3 + 1 + 3  # 400 / 4, message overhead, "user", priming


@pytest.mark.parametrize("cache_size", [0, 16])
def test_a_lone_surrogate_is_counted_not_raised(cache_size: int) -> None:
    counter = TokenCounter(cache_size=cache_size)
    assert counter.count("a\ud800b", "gpt-4o") == counter.count("a\ufffdb", "gpt-4o") > 0


def test_importing_the_package_does_not_load_the_tokenizer() -> None:
    code = "import sys, aicp.compress; sys.exit('bpe_openai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
