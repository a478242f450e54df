"""The Responses API <-> canonical chat translation, piece by piece."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aicp.api.errors import stream_error_event
from aicp.errors import InvalidRequest, UpstreamUnavailable
from aicp.protocol.responses import StreamEncoder, completion_to_response, responses_to_chat
from aicp.protocol.responses.response import usage_from_responses
from aicp.providers.base import RESPONSES, Call, Timeouts

# --- requests ----------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    chat = responses_to_chat({"model": "m", "input": "hi", "instructions": "Be brief."})
    assert chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
    }


def test_settings_map_to_their_chat_names() -> None:
    body = {
        "model": "m",
        "input": "hi",
        "max_output_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "metadata": {"k": "v"},
        "user": "u-1",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": True}},
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }
    chat = responses_to_chat(body)
    assert chat["max_tokens"] == 100
    assert chat["temperature"] == 0.5 and chat["top_p"] == 0.9
    assert chat["metadata"] == {"k": "v"} and chat["user"] == "u-1"
    assert chat["parallel_tool_calls"] is False
    assert chat["reasoning_effort"] == "high"
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {}, "strict": True},
    }
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    # Fields with no chat meaning stay behind.
    assert "store" not in chat and "include" not in chat and "max_output_tokens" not in chat


def test_multimodal_parts_become_chat_parts() -> None:
    item = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,BB", "filename": "a"},
        ],
    }
    chat = responses_to_chat({"model": "m", "input": [item]})
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,BB", "filename": "a"},
                },
            ],
        }
    ]


def test_an_image_by_file_id_cannot_be_translated() -> None:
    item = {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}
    with pytest.raises(InvalidRequest, match="file_id"):
        responses_to_chat({"model": "m", "input": [item]})


def test_history_groups_calls_with_their_assistant_message() -> None:
    items: list[Any] = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "two"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"c":"Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"c":"Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "21C"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "18C"}],
        },
    ]
    chat = responses_to_chat({"model": "m", "input": items})
    assert chat["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "two",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"c":"Paris"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"c":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "21C"},
        {"role": "tool", "tool_call_id": "c2", "content": "18C"},
    ]


def test_tools_and_tool_choice() -> None:
    tool = {"type": "function", "name": "f", "description": "d", "parameters": {}, "strict": True}
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "x",
            "tools": [tool],
            "tool_choice": {"type": "function", "name": "f"},
        }
    )
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {}, "strict": True},
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert (
        responses_to_chat({"model": "m", "input": "x", "tool_choice": "required"})["tool_choice"]
        == "required"
    )
    allowed = {"type": "allowed_tools", "mode": "required", "tools": []}
    assert (
        responses_to_chat({"model": "m", "input": "x", "tool_choice": allowed})["tool_choice"]
        == "required"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"tools": [{"type": "file_search"}]}, "'file_search'"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "'item_reference'"),
        ({"input": [{"role": "user", "content": [{"type": "hologram"}]}]}, "'hologram'"),
    ],
)
def test_what_chat_cannot_express_is_a_clear_400(body: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as caught:
        responses_to_chat({"model": "m", "input": "x", **body})
    assert caught.value.status == 400


def test_call_openai_translates_a_responses_body() -> None:
    call = Call(RESPONSES, "chat", {"model": "m", "input": "hi"}, "up", {}, Timeouts(1, 1, 1))
    assert call.openai()["messages"] == [{"role": "user", "content": "hi"}]


# --- responses -----------------------------------------------------------------------


def _completion(message: dict[str, Any], finish: str = "stop", **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "up",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, **usage},
    }


def test_a_completion_becomes_a_response() -> None:
    request = {"model": "alias", "input": "hi", "instructions": "Be brief.", "temperature": 0.1}
    data = _completion(
        {"role": "assistant", "content": "Hello"},
        prompt_tokens_details={"cached_tokens": 4},
        completion_tokens_details={"reasoning_tokens": 2},
    )
    resp = completion_to_response(data, "alias", request)
    assert resp["id"] == "resp_chatcmpl-1" and resp["object"] == "response"
    assert resp["created_at"] == 1700000000
    assert resp["status"] == "completed" and resp["incomplete_details"] is None
    assert resp["model"] == "alias"
    assert resp["instructions"] == "Be brief." and resp["temperature"] == 0.1
    [message] = resp["output"]
    assert message["type"] == "message" and message["status"] == "completed"
    assert message["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]
    assert resp["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }


def test_reasoning_and_tool_calls_become_items() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Let me think.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    resp = completion_to_response(_completion(message, "tool_calls"), "m", {})
    kinds = [item["type"] for item in resp["output"]]
    assert kinds == ["reasoning", "function_call"]
    reasoning, call = resp["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Let me think."}]
    assert reasoning["id"].startswith("rs_")
    assert call["call_id"] == "call_1" and call["name"] == "f" and call["arguments"] == "{}"
    assert call["id"].startswith("fc_") and call["status"] == "completed"


def test_a_truncated_completion_is_incomplete() -> None:
    resp = completion_to_response(
        _completion({"role": "assistant", "content": "Hel"}, "length"), "m", {}
    )
    assert resp["status"] == "incomplete"
    assert resp["incomplete_details"] == {"reason": "max_output_tokens"}


def test_responses_usage_reads_back() -> None:
    usage = usage_from_responses(
        {"input_tokens": 9, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 2}}
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (9, 4, 2)


# --- streams -------------------------------------------------------------------------


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        out.append(event)
    return out


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_stream_of_reasoning_text_and_two_calls() -> None:
    enc = StreamEncoder({"model": "m", "input": "hi"})
    raw = b"".join(
        [
            enc.feed(_chunk({"role": "assistant", "content": ""})),
            enc.feed(_chunk({"reasoning_content": "Hmm"})),
            enc.feed(_chunk({"content": "Hel"})),
            enc.feed(_chunk({"content": "lo"})),
            enc.feed(
                _chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": ""}}
                        ]
                    }
                )
            ),
            enc.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})),
            enc.feed(
                _chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_b",
                                "function": {"name": "g", "arguments": "{"},
                            }
                        ]
                    }
                )
            ),
            enc.feed(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]})),
            enc.feed(_chunk({}, "tool_calls")),
            enc.feed(
                {
                    "id": "chatcmpl-9",
                    "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                }
            ),
            enc.close(),
        ]
    )
    events = _events(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # call_a
        "response.function_call_arguments.delta",
        "response.output_item.added",  # call_b
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["id"] == events[0]["response"]["id"] == "resp_chatcmpl-9"
    assert final["status"] == "completed"
    assert [i["type"] for i in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert [(i["call_id"], i["arguments"]) for i in final["output"][2:]] == [
        ("call_a", "{}"),
        ("call_b", "{}"),
    ]
    assert final["usage"]["input_tokens"] == 3 and final["usage"]["output_tokens"] == 4
    # Items keep their ids from added to done.
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
    assert sorted(added) == sorted(done) == sorted(i["id"] for i in final["output"])


def test_a_stream_cut_at_the_token_limit_is_incomplete() -> None:
    enc = StreamEncoder({"model": "m", "input": "hi"})
    raw = enc.feed(_chunk({"content": "abcdefgh"})) + enc.feed(_chunk({}, "length")) + enc.close()
    final = _events(raw)[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    # No usage chunk came: the output is estimated from what was streamed.
    assert final["response"]["usage"]["output_tokens"] == 2


def test_an_empty_stream_still_completes() -> None:
    events = _events(StreamEncoder({"model": "m", "input": "hi"}).close())
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]


def test_the_error_event_continues_the_numbering() -> None:
    enc = StreamEncoder({"model": "m", "input": "hi"})
    enc.feed(_chunk({"content": "a"}))
    raw = stream_error_event(UpstreamUnavailable("upstream gone"), RESPONSES, enc.sequence_number)
    [event] = _events(raw)
    assert event["type"] == "error" and event["message"] == "upstream gone"
    assert event["sequence_number"] == enc.sequence_number
