"""The text of stored response bodies: every shape the gateway answers with."""

from __future__ import annotations

import orjson
import pytest

from aicp.receipts.output import output_text


def sse(*events: dict[str, object], done: bool = False) -> bytes:
    out = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


CASES = {
    "chat with a tool call": (
        {
            "object": "chat.completion",
            "choices": [
                {
                    "message": {
                        "content": "Let me look.",
                        "tool_calls": [
                            {"function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
                        ],
                    }
                }
            ],
        },
        'Let me look.[tool weather({"city":"Paris"})]',
    ),
    "anthropic message with tool use": (
        {
            "type": "message",
            "content": [
                {"type": "text", "text": "Sure. "},
                {"type": "tool_use", "name": "weather", "input": {"city": "Paris"}},
            ],
        },
        'Sure. [tool weather({"city":"Paris"})]',
    ),
    "responses": (
        {
            "object": "response",
            "output": [
                {"type": "reasoning", "summary": []},
                {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
                {"type": "function_call", "name": "f", "arguments": "{}"},
            ],
        },
        "Hi[tool f({})]",
    ),
    "openai error": ({"error": {"message": "no such model"}}, "error: no such model"),
    "anthropic error": (
        {"type": "error", "error": {"type": "x", "message": "overloaded"}},
        "error: overloaded",
    ),
    "embeddings": (
        {"object": "list", "data": [{"embedding": [0.1, 0.2]}, {"embedding": [0.3, 0.4]}]},
        "<2 embeddings of 2 dimensions>",
    ),
    "count tokens": ({"input_tokens": 12}, "input_tokens: 12"),
}


@pytest.mark.parametrize("name", CASES)
def test_json_bodies(name: str) -> None:
    body, text = CASES[name]
    assert output_text(orjson.dumps(body)) == text


def test_an_openai_stream_with_tool_call_deltas_and_an_error_at_the_end() -> None:
    call = {"index": 0, "function": {"name": "weather", "arguments": '{"ci'}}
    more = {"index": 0, "function": {"arguments": 'ty":"Paris"}'}}
    body = sse(
        {"choices": [{"delta": {"content": "He"}}]},
        {"choices": [{"delta": {"content": "llo"}}]},
        {"choices": [{"delta": {"tool_calls": [call]}}]},
        {"choices": [{"delta": {"tool_calls": [more]}}]},
        {"error": {"message": "upstream went away"}},
    )
    assert output_text(body) == 'Hello\nerror: upstream went away[tool weather({"city":"Paris"})]'


def test_an_anthropic_stream_with_a_tool() -> None:
    body = b"event: message_start\n" + sse(
        {"type": "message_start", "message": {"type": "message", "content": []}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "A"}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "name": "t"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"partial_json": "{}"}},
        {"type": "message_stop"},
    )
    assert output_text(body) == "A[tool t({})]"


def test_a_responses_stream_with_a_function_call() -> None:
    body = sse(
        {"type": "response.output_text.delta", "delta": "Hi"},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"type": "function_call", "name": "f"},
        },
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"},
        {"type": "response.completed", "response": {"object": "response", "output": []}},
    )
    assert output_text(body) == "Hi[tool f({})]"


def test_nothing_readable_is_none() -> None:
    assert output_text(None) is None
    assert output_text(b"") is None
    assert output_text(b"<12 bytes>") is None
    assert output_text(b"[1, 2]") is None


def test_the_record_stage_timestamps_equal_rfc3339_across_second_boundaries() -> None:
    from aicp.receipts.build import Stamps, rfc3339

    stamp = Stamps()
    for epoch in (0.0, 0.9999996, 1.0, 1796112527.5798526, 1796112527.9, 1796112528.0000004):
        assert stamp(epoch) == rfc3339(epoch)
