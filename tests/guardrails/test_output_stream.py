"""Output guarding of streams: SSE events rewritten in every protocol, text deltas
restored and redacted across chunk boundaries, other events left byte for byte."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

from aicp.guardrails.redact import Placeholders, StreamRedactor, StreamRestorer
from aicp.guardrails.secrets import SecretsDetector
from aicp.guardrails.stream import TextPipe, rewrite_stream

EMAIL = "jane.doe@example.com"


def _pipe(redact: bool = False) -> tuple[TextPipe, str]:
    held = Placeholders()
    placeholder = held.placeholder("email", EMAIL)
    redactor = StreamRedactor([SecretsDetector()], Placeholders()) if redact else None
    return TextPipe(redactor, StreamRestorer(held)), placeholder


async def _items(chunks: list[bytes | dict[str, Any]]) -> AsyncIterator[bytes | dict[str, Any]]:
    for chunk in chunks:
        yield chunk


async def _run(chunks: list[Any], protocol: str, pipe: TextPipe) -> list[Any]:
    return [item async for item in rewrite_stream(_items(chunks), protocol, lambda: pipe)]


def _split_randomly(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), 6))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _openai_sse(pieces: list[str]) -> bytes:
    out = b""
    for piece in pieces:
        chunk = {"id": "c", "choices": [{"index": 0, "delta": {"content": piece}}]}
        out += b"data: " + json.dumps(chunk).encode() + b"\n\n"
    done = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return out + b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n"


def _openai_text(data: bytes) -> str:
    text = ""
    for event in data.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in json.loads(event[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


async def test_an_openai_stream_gets_a_split_placeholder_restored_whatever_the_chunking() -> None:
    rng = random.Random(7)
    for _ in range(20):
        pipe, placeholder = _pipe()
        head, tail = placeholder[:4], placeholder[4:]
        sse = _openai_sse(["Write to ", head, tail, " today, ", "thanks"])
        out = b"".join(await _run(_split_randomly(sse, rng), "openai", pipe))
        assert _openai_text(out) == f"Write to {EMAIL} today, thanks"
        assert out.endswith(b"data: [DONE]\n\n")


async def test_events_without_text_to_change_go_out_byte_for_byte() -> None:
    pipe, _ = _pipe()
    sse = _openai_sse(["nothing ", "to see"])
    assert b"".join(await _run([sse], "openai", pipe)) == sse


async def test_a_secret_streamed_in_pieces_is_redacted() -> None:
    pipe, _ = _pipe(redact=True)
    key = "AKIAIOSFODNN7EXAMPLE"
    sse = _openai_sse(["the key is ", key[:9], key[9:], " ok"])
    text = _openai_text(b"".join(await _run([sse], "openai", pipe)))
    assert key not in text and "<SECRET_1>" in text and text.endswith(" ok")


async def test_an_anthropic_stream_releases_the_held_tail_before_the_block_stops() -> None:
    pipe, placeholder = _pipe()

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    def delta(text: str) -> bytes:
        block = {"type": "text_delta", "text": text}
        return event("content_block_delta", {"index": 0, "delta": block})

    sse = (
        event("message_start", {"message": {"id": "m"}})
        + delta("mail ")
        + delta(placeholder[:-1])
        + delta(placeholder[-1:])
        + event("content_block_stop", {"index": 0})
        + event("message_stop", {})
    )
    out = b"".join(await _run([sse], "anthropic", pipe))
    text = ""
    kinds = []
    for block in out.split(b"\n\n"):
        if not block:
            continue
        name, data = block.split(b"\n", 1)
        kinds.append(name[7:].decode())
        payload = json.loads(data[6:])
        if payload["type"] == "content_block_delta":
            text += payload["delta"]["text"]
    assert text == f"mail {EMAIL}"
    assert kinds[-2:] == ["content_block_stop", "message_stop"]


async def test_canonical_chunks_and_responses_done_events() -> None:
    pipe, placeholder = _pipe()
    chunks: list[Any] = [
        {"choices": [{"index": 0, "delta": {"content": "to " + placeholder[:3]}}]},
        {"choices": [{"index": 0, "delta": {"content": placeholder[3:]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    out = await _run(chunks, "canonical", pipe)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
    assert text == f"to {EMAIL}"
    pipe, placeholder = _pipe()

    def sse(data: dict[str, Any]) -> bytes:
        return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()

    stream = sse({"type": "response.output_text.delta", "delta": "hi " + placeholder[:2]})
    stream += sse({"type": "response.output_text.delta", "delta": placeholder[2:]})
    stream += sse({"type": "response.output_text.done", "text": "hi " + placeholder})
    out_bytes = b"".join(await _run([stream], "openai-responses", pipe))
    events = [json.loads(b.split(b"\ndata: ", 1)[1]) for b in out_bytes.split(b"\n\n") if b]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == f"hi {EMAIL}"
    assert events[-1]["text"] == f"hi {EMAIL}"


async def test_choices_of_one_stream_are_guarded_apart() -> None:
    held = Placeholders()
    placeholder = held.placeholder("email", EMAIL)

    def make() -> TextPipe:
        return TextPipe(StreamRedactor([SecretsDetector()], Placeholders()), StreamRestorer(held))

    chunks: list[Any] = []
    for piece in ("to ", placeholder[:5], placeholder[5:], " now"):
        for index in (0, 1):
            chunks.append({"choices": [{"index": index, "delta": {"content": piece}}]})
    for index in (0, 1):
        chunks.append({"choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]})
    out = [item async for item in rewrite_stream(_items(chunks), "canonical", make)]
    texts = {0: "", 1: ""}
    for chunk in out:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == {0: f"to {EMAIL} now", 1: f"to {EMAIL} now"}


def test_the_stream_redactor_records_each_finding_once_where_it_arrived() -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    text = "first " + "x " * 100 + f"then {key} and " + "y " * 100 + f"again {key}."
    redactor = StreamRedactor([SecretsDetector()], Placeholders(), window=64)
    out = "".join(redactor.feed(text[i : i + 7]) for i in range(0, len(text), 7))
    out += redactor.flush()
    assert key not in out
    starts = [f.start for f in redactor.found]
    assert starts == [text.index(key), text.rindex(key)]
    assert all(text[f.start : f.end] == key for f in redactor.found)


def test_a_flagged_detector_is_recorded_but_not_redacted() -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    redactor = StreamRedactor([SecretsDetector()], Placeholders())
    redactor.redacting = frozenset()
    out = redactor.feed(f"the key {key} is here ") + redactor.flush()
    assert out == f"the key {key} is here "
    assert [f.kind for f in redactor.found] == ["aws_access_key"]


def test_text_without_spaces_is_not_held_back_by_the_secrets_guard() -> None:
    from aicp.guardrails.stream import EagerRedactor

    redactor = EagerRedactor([SecretsDetector()], Placeholders())
    pieces = ["这是一个", "没有空格的", "中文句子。", "密钥是", "AKIAIOSFOD", "NN7EXAMPLE", "。好"]
    out = [redactor.feed(p) for p in pieces]
    # Each CJK piece goes out as it arrives; only the key, while it is arriving, waits.
    assert out[:4] == ["这是一个", "没有空格的", "中文句子。", "密钥是"]
    assert out[4] == ""
    rest = "".join(out[5:]) + redactor.flush()
    assert "AKIAIOSFODNN7EXAMPLE" not in rest and "<SECRET_1>" in rest and rest.endswith("。好")


def _restoring() -> tuple[Placeholders, str, TextPipe, Any]:
    from aicp.guardrails.redact import JsonStreamRestorer

    held = Placeholders()
    placeholder = held.placeholder("email", 'jane"doe@example.com')  # a quote: JSON-escaped

    def make_args() -> TextPipe:
        return TextPipe(None, JsonStreamRestorer(held))

    return held, placeholder, TextPipe(None, StreamRestorer(held)), make_args


def _call_chunk(arguments: str, finish: str | None = None) -> dict[str, Any]:
    call = {"index": 0, "function": {"arguments": arguments}}
    delta = {"tool_calls": [call]} if arguments else {}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_placeholders_in_streamed_tool_arguments_are_restored_as_json() -> None:
    _, placeholder, pipe, make_args = _restoring()
    args = '{"to": "' + placeholder + '"}'
    pieces = [args[:9], args[9:14], args[14:]]
    sse = b"".join(b"data: " + json.dumps(_call_chunk(p)).encode() + b"\n\n" for p in pieces)
    sse += b"data: " + json.dumps(_call_chunk("", "tool_calls")).encode() + b"\n\ndata: [DONE]\n\n"
    out = b"".join(
        [i async for i in rewrite_stream(_items([sse]), "openai", lambda: pipe, make_args)]
    )
    got = ""
    for event in out.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in json.loads(event[6:])["choices"]:
                for call in choice["delta"].get("tool_calls") or []:
                    got += call["function"]["arguments"]
    assert json.loads(got) == {"to": 'jane"doe@example.com'}


async def test_anthropic_and_responses_tool_arguments_are_restored() -> None:
    _, placeholder, pipe, make_args = _restoring()
    args = '{"to": "' + placeholder + '"}'

    def anthropic_event(data: dict[str, Any]) -> bytes:
        return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()

    deltas = [
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": p},
        }
        for p in (args[:12], args[12:])
    ]
    sse = b"".join(
        anthropic_event(d) for d in [*deltas, {"type": "content_block_stop", "index": 1}]
    )
    out = b"".join(
        [i async for i in rewrite_stream(_items([sse]), "anthropic", lambda: pipe, make_args)]
    )
    got = "".join(
        json.loads(line[6:])["delta"]["partial_json"]
        for line in out.split(b"\n")
        if line.startswith(b"data: ") and b"input_json_delta" in line
    )
    assert json.loads(got) == {"to": 'jane"doe@example.com'}
    done = {"type": "response.function_call_arguments.done", "output_index": 0, "arguments": args}
    sse = anthropic_event(done)
    out = b"".join(
        [
            i
            async for i in rewrite_stream(
                _items([sse]), "openai-responses", lambda: pipe, make_args
            )
        ]
    )
    event = json.loads(out.split(b"data: ", 1)[1].split(b"\n")[0])
    assert json.loads(event["arguments"]) == {"to": 'jane"doe@example.com'}
