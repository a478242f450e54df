"""The llm stage type: prompts from inputs, through a real gateway, receipts recorded."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from aicp.pipeline.builtins.llm import LLM, ReplyNotJson
from aicp.pipeline.gateway import HttpLlm
from aicp.pipeline.model import StageFailed, Unknown
from aicp.pipeline.prompting import MissingField, render
from aicp.testing import FakeUpstream, GatewayServer
from tests.pipeline import fake_ctx
from tests.pipeline.fake_ctx import FakeCtx, receipt_cost, stage


class Doc(BaseModel):
    title: str
    pages: int


gw = fake_ctx.gw
llm = fake_ctx.llm


def run(llm: HttpLlm, inputs: dict[str, Any], **options: Any) -> tuple[Any, FakeCtx]:
    ctx = FakeCtx(stage("llm", tuple(inputs), **options), llm=llm)
    assert LLM.check(ctx.stage) == []
    return LLM.run(ctx, inputs), ctx


def test_a_prompt_is_filled_from_the_inputs_and_the_reply_text_returned(
    llm: HttpLlm, gw: GatewayServer, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = "A short summary."
    out, ctx = run(
        llm,
        {"doc": Doc(title="Dune", pages=412), "tone": "dry", "tags": ["sf", "desert"]},
        model="chat",
        system="Be {tone}.",
        prompt="Summarise {doc.title} ({doc.pages} pages): {doc} tags={tags}",
        temperature=0,
        max_tokens=50,
        stop=["\n\n"],
        metadata={"team": "docs"},
    )
    assert out == "A short summary."
    sent = module_upstream.requests[-1].body
    assert sent["messages"] == [
        {"role": "system", "content": "Be dry."},
        {
            "role": "user",
            "content": 'Summarise Dune (412 pages): {"title": "Dune", "pages": 412} '
            'tags=["sf", "desert"]',
        },
    ]
    assert sent["temperature"] == 0 and sent["max_tokens"] == 50
    assert sent["stop"] == ["\n\n"] and sent["metadata"] == {"team": "docs"}
    [(receipt_id, cost)] = ctx.receipts
    assert receipt_id is not None and cost > 0
    assert cost == pytest.approx(receipt_cost(gw, receipt_id))


def test_messages_are_templates_too(llm: HttpLlm, module_upstream: FakeUpstream) -> None:
    run(
        llm,
        {"q": "2+2?"},
        model="chat",
        messages=[
            {"role": "user", "content": "Answer: {q}"},
            {"role": "assistant", "content": "Thinking about {q}"},
            {"role": "user", "content": "Literal {{braces}}"},
        ],
    )
    contents = [m["content"] for m in module_upstream.requests[-1].body["messages"]]
    assert contents == ["Answer: 2+2?", "Thinking about 2+2?", "Literal {braces}"]


def test_json_output_is_parsed_even_inside_a_code_fence(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = '```json\n{"answer": 42, "sure": true}\n```'
    out, _ = run(llm, {}, model="chat", prompt="Answer in JSON", output="json")
    assert out == {"answer": 42, "sure": True}


def test_response_format_is_passed_to_the_gateway(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    out, _ = run(
        llm, {}, model="chat", prompt="x", output="json", response_format={"type": "json_object"}
    )
    assert out == {"answer": "fake"}  # the fake upstream's answer in JSON mode
    assert module_upstream.requests[-1].body["response_format"] == {"type": "json_object"}


def test_a_reply_that_is_not_json_fails_the_attempt_but_its_cost_is_kept(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = "Sure! Here it is: answer=42"
    ctx = FakeCtx(stage("llm", model="chat", prompt="x", output="json"), llm=llm)
    with pytest.raises(ReplyNotJson, match="not JSON") as caught:
        LLM.run(ctx, {})
    assert not isinstance(caught.value, StageFailed)  # so the stage's retries apply
    assert len(ctx.receipts) == 1 and ctx.receipts[0][1] > 0


def test_reply_output_is_the_gateways_whole_answer(llm: HttpLlm) -> None:
    out, _ = run(llm, {}, model="chat", prompt="x", output="reply")
    assert out["object"] == "chat.completion"
    assert out["usage"]["prompt_tokens"] == 11


def test_a_missing_field_fails_the_stage_naming_it(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    before = len(module_upstream.requests)
    ctx = FakeCtx(
        stage("llm", ("question",), model="chat", prompt="Q: {question} {topic}"), llm=llm
    )
    with pytest.raises(StageFailed, match=r"\{topic\}.*inputs: question"):
        LLM.run(ctx, {"question": "why?"})
    assert len(module_upstream.requests) == before  # nothing was sent


def test_embed_returns_a_vector_per_text_and_records_its_receipt(llm: HttpLlm) -> None:
    out, ctx = run(llm, {"texts": ["a", "b"]}, operation="embed", model="embedder")
    assert len(out) == 2 and len(out[0]) == 8
    assert len(ctx.receipts) == 1 and ctx.receipts[0][1] > 0


def test_embed_refuses_texts_that_are_not_a_list_of_strings() -> None:
    ctx = FakeCtx(stage("llm", ("texts",), operation="embed", model="embedder"))
    with pytest.raises(StageFailed, match="list of strings"):
        LLM.run(ctx, {"texts": "just one"})
    with pytest.raises(StageFailed, match=r"'texts'\[1\]"):
        LLM.run(ctx, {"texts": ["ok", 3]})


@pytest.mark.parametrize(
    ("inputs", "options", "problem"),
    [
        ((), {"prompt": "hi"}, "option 'model' is required"),
        ((), {"model": "m"}, "option 'prompt' (or 'messages') is required"),
        (
            (),
            {"model": "m", "prompt": "a", "messages": [{"role": "user", "content": "b"}]},
            "options 'prompt' and 'messages' exclude each other",
        ),
        ((), {"model": "m", "prompt": "a", "temprature": 1}, "unknown option 'temprature'"),
        ((), {"model": "m", "prompt": "a", "temperature": "hot"}, "must be a number, not str"),
        ((), {"model": "m", "prompt": "a", "output": "xml"}, "must be one of text, json, reply"),
        ((), {"model": "m", "prompt": "a", "max_tokens": 0}, "a whole number > 0"),
        (("q",), {"model": "m", "prompt": "{q} {other}"}, "uses {other}, which is not an input"),
        (("q",), {"model": "m", "prompt": "{q"}, "option 'prompt'"),
        ((), {"model": "m", "prompt": "{}"}, "has no name"),
        ((), {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "'role' must be"),
        ((), {"model": "m", "messages": []}, "must not be empty"),
        ((), {"operation": "embed", "model": "m"}, "needs an input named 'texts'"),
        (("texts",), {"operation": "embed", "model": "m", "prompt": "x"}, "unknown option"),
        ((), {"operation": "rerank", "model": "m"}, "must be one of chat, embed"),
    ],
)
def test_check_reports_bad_options(
    inputs: tuple[str, ...], options: dict[str, Any], problem: str
) -> None:
    problems = LLM.check(stage("llm", inputs, **options))
    assert any(problem in p for p in problems), problems


def test_check_accepts_a_full_chat_stage() -> None:
    s = stage(
        "llm",
        ("doc",),
        model="m",
        system="Be brief about {doc.title}",
        prompt="{doc[title]:>10}",
        temperature=0.1,
        top_p=0.9,
        stop=["\n"],
        metadata={"team": "x"},
        output="text",
    )
    assert LLM.check(s) == []


def test_output_of_is_str_for_text_and_unknown_for_json() -> None:
    assert LLM.output_of(stage("llm", model="m", prompt="x")) is str
    assert LLM.output_of(stage("llm", model="m", prompt="x", output="json")) is Unknown
    assert LLM.output_of(stage("llm", operation="embed", model="m")) == list[list[float]]
    assert LLM.output_of(stage("llm", operation="nope")) is Unknown


def test_templates_reach_into_mappings_lists_and_objects() -> None:
    values = {"doc": {"title": "Dune", "authors": ["Herbert"]}, "model": Doc(title="X", pages=3)}
    text = render(
        "{doc.title} {doc[title]} {doc.authors.0} {model.pages:03d} {doc.authors}", values
    )
    assert text == 'Dune Dune Herbert 003 ["Herbert"]'


def test_a_missing_key_inside_an_input_is_named() -> None:
    with pytest.raises(MissingField, match=r"\{doc\.year\}.*doc has no 'year'"):
        render("{doc.year}", {"doc": {"title": "Dune"}})
    with pytest.raises(MissingField, match=r"doc\.authors has no '3'"):
        render("{doc.authors.3}", {"doc": {"authors": []}})
