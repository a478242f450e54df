"""The request's prose found in every protocol, and written back in place."""

from __future__ import annotations

from typing import Any

from aicp.protocol.text import joined, reply_slots, request_slots


def test_openai_chat_text_parts_tool_arguments_and_write_back() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": '{"q": "x"}'}}],
            },
        ]
    }
    slots = request_slots("openai", "chat", body)
    assert [s.text for s in slots] == ["be brief", "look at this", '{"q": "x"}']
    slots[1].text = "changed"
    assert body["messages"][1]["content"][0]["text"] == "changed"
    assert joined(slots) == 'be brief\nchanged\n{"q": "x"}'


def test_anthropic_system_blocks_and_tool_results() -> None:
    body = {
        "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": "plain"},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "result text"},
                    {"type": "image", "source": {}},
                    {"type": "text", "text": "after"},
                ],
            },
        ],
    }
    assert [s.text for s in request_slots("anthropic", "chat", body)] == [
        "sys",
        "plain",
        "result text",
        "after",
    ]


def test_responses_input_and_embeddings() -> None:
    body = {
        "instructions": "inst",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "function_call_output", "call_id": "c", "output": "out"},
        ],
    }
    assert [s.text for s in request_slots("openai-responses", "chat", body)] == [
        "inst",
        "q",
        "out",
    ]
    assert [s.text for s in request_slots("openai-responses", "chat", {"input": "hi"})] == ["hi"]
    embed = {"input": ["a", "b", [1, 2]]}
    assert [s.text for s in request_slots("openai", "embeddings", embed)] == ["a", "b"]


def test_reply_text_of_each_protocol() -> None:
    chat = {"choices": [{"message": {"role": "assistant", "content": "x"}}]}
    assert [s.text for s in reply_slots("openai", chat)] == ["x"]
    message = {"content": [{"type": "text", "text": "y"}, {"type": "tool_use", "input": {}}]}
    assert [s.text for s in reply_slots("anthropic", message)] == ["y"]
    response = {"output": [{"type": "message", "content": [{"type": "output_text", "text": "z"}]}]}
    assert [s.text for s in reply_slots("openai-responses", response)] == ["z"]


def test_anthropic_tool_use_input_strings_are_text_and_written_back() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "deploy",
                        "input": {"env": "prod", "args": ["--token", {"deep": "x"}], "n": 3},
                    }
                ],
            }
        ]
    }
    slots = request_slots("anthropic", "chat", body)
    assert [s.text for s in slots] == ["prod", "--token", "x"]
    slots[1].text = "<SECRET_1>"
    assert body["messages"][0]["content"][0]["input"]["args"][0] == "<SECRET_1>"
