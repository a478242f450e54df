"""Canonical chat <-> Gemini generateContent, on the shapes Google documents."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from aicp.errors import InvalidRequest
from aicp.protocol.gemini import (
    SKIP_SIGNATURE,
    chat_to_gemini,
    gemini_to_completion,
)
from aicp.protocol.gemini_schema import clean_schema

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


# --- requests ----------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    out = chat_to_gemini(
        {
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "salut"},
                {"role": "user", "content": "again"},
            ],
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "salut"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]
    assert "generationConfig" not in out


def test_images_go_inline_from_data_urls_and_by_uri_from_http() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    out = chat_to_gemini(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.webp?s=1"}},
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
                    ],
                }
            ]
        }
    )
    assert out["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": png}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/cat.webp?s=1"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
    ]


def test_tools_are_declared_with_a_schema_gemini_accepts() -> None:
    out = chat_to_gemini({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]})
    decl = out["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "get_weather"
    assert decl["description"] == "Weather for a city"
    params = decl["parameters"]
    assert "$schema" not in params and "additionalProperties" not in params
    assert params["properties"]["unit"] == {"type": "string", "nullable": True, "enum": ["c", "f"]}
    assert params["required"] == ["city"]
    assert "toolConfig" not in out


def test_schema_refs_are_inlined_and_unknown_keywords_dropped() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "p": {"$ref": "#/$defs/Point"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "const": "a"},
                "uniqueItems": True,
            },
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "p": {"type": "object", "properties": {"x": {"type": "number"}}},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
        },
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_becomes_function_calling_config(choice: Any, config: Any) -> None:
    out = chat_to_gemini(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": choice,
        }
    )
    assert out["toolConfig"] == {"functionCallingConfig": config}


def _tool_history(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        ],
    }


def test_tool_calls_and_results_round_trip_with_names_found_by_id() -> None:
    out = chat_to_gemini(_tool_history("gemini-2.5-pro"))
    model_turn, answers = out["contents"][1], out["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {"city": "Rome"}}},
        ],
    }
    # Both answers to the parallel calls travel in one user turn.
    assert answers == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
        ],
    }


def test_gemini_3_replayed_calls_carry_the_documented_signature_sentinel() -> None:
    out = chat_to_gemini(_tool_history("gemini-3-pro-preview"))
    parts = out["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[1]  # only the first of parallel calls


def test_a_tool_result_for_an_unknown_call_is_a_client_error() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_missing", "content": "1"},
        ]
    }
    with pytest.raises(InvalidRequest, match="call_missing"):
        chat_to_gemini(body)


def test_sampling_limits_and_json_schema_map_to_generation_config() -> None:
    out = chat_to_gemini(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_completion_tokens": 300,
            "max_tokens": 100,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {
                        "type": "object",
                        "properties": {"answer": {"type": "string"}},
                        "additionalProperties": False,
                    },
                },
            },
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "maxOutputTokens": 300,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"answer": {"type": "string"}}},
    }


def test_json_object_mode_asks_for_json() -> None:
    out = chat_to_gemini(
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    )
    assert out["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0, "includeThoughts": False}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
    ],
)
def test_reasoning_effort_becomes_thinking_config(model: str, effort: str, thinking: Any) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}
    out = chat_to_gemini(body, model)
    assert out["generationConfig"]["thinkingConfig"] == thinking


# --- answers -----------------------------------------------------------------


def test_a_text_answer_becomes_a_chat_completion_with_cached_tokens() -> None:
    resp = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "Let me think", "thought": True}, {"text": "Hello"}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 4,
            "cachedContentTokenCount": 6,
            "totalTokenCount": 19,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }
    out = gemini_to_completion(resp, "gemini-2.5-flash")
    assert out["id"] == "chatcmpl-abc"
    assert out["object"] == "chat.completion"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello",
                "reasoning_content": "Let me think",
            },
            "finish_reason": "stop",
        }
    ]
    assert out["usage"]["prompt_tokens"] == 10
    assert out["usage"]["completion_tokens"] == 9
    assert out["usage"]["total_tokens"] == 19
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 6}
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


def test_function_calls_become_tool_calls_with_stable_ids() -> None:
    resp = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "responseId": "r1",
    }
    first = gemini_to_completion(resp, "m")
    again = gemini_to_completion(resp, "m")
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert calls[0]["id"].startswith("call_") and calls[0]["id"] != calls[1]["id"]
    assert [c["id"] for c in calls] == [
        c["id"] for c in again["choices"][0]["message"]["tool_calls"]
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter")],
)
def test_finish_reasons_map_to_openai(reason: str, expected: str) -> None:
    resp = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert gemini_to_completion(resp, "m")["choices"][0]["finish_reason"] == expected


def test_a_blocked_prompt_is_a_content_filter_finish() -> None:
    resp = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    out = gemini_to_completion(resp, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["usage"]["prompt_tokens"] == 3
