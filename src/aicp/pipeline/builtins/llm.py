"""The `llm` stage type: one chat completion (or one embeddings call) through the gateway.

Options (chat, the default operation):

- `model` (required): a model name the gateway serves;
- `prompt`: a template (prompting.py) filled from the stage's inputs, sent as the
  user message; or `messages`: a list of `{role, content}` whose contents are
  templates; one of the two is required;
- `system`: a template sent as the system message first;
- `temperature`, `max_tokens`, `top_p`, `stop`, `response_format`, `metadata`:
  passed to the gateway as they are;
- `output`: `text` (the reply's text, the default), `json` (the text parsed as
  JSON; a reply that is not JSON fails the attempt, so `retries` ask again) or
  `reply` (the gateway's whole JSON answer).

With `operation: embed` the stage embeds its input `texts` (a list of strings)
with `model` and returns one vector per text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from aicp.pipeline import prompting
from aicp.pipeline.builtins.options import (
    LIST,
    MAPPING,
    NUMBER,
    POSITIVE_INT,
    STR,
    STR_OR_STRS,
    Opt,
    problems,
)
from aicp.pipeline.model import LlmReply, Stage, StageContext, StageFailed, Unknown

#: Options sent to the gateway unchanged.
PASSED = ("temperature", "max_tokens", "top_p", "stop", "response_format", "metadata")
ROLES = ("system", "developer", "user", "assistant")
_OPERATION = Opt(STR, choices=("chat", "embed"))

CHAT_OPTIONS: Mapping[str, Opt] = {
    "operation": _OPERATION,
    "model": Opt(STR, required=True),
    "prompt": Opt(STR),
    "system": Opt(STR),
    "messages": Opt(LIST),
    "temperature": Opt(NUMBER),
    "max_tokens": Opt(POSITIVE_INT),
    "top_p": Opt(NUMBER),
    "stop": Opt(STR_OR_STRS),
    "response_format": Opt(MAPPING),
    "metadata": Opt(MAPPING),
    "output": Opt(STR, choices=("text", "json", "reply")),
}
EMBED_OPTIONS: Mapping[str, Opt] = {"operation": _OPERATION, "model": Opt(STR, required=True)}


class ReplyNotJson(ValueError):
    """An `output: json` stage got a reply that does not parse; another attempt may."""


def _strip_fence(text: str) -> str:
    """The text inside one ```json ... ``` fence, which models like to add."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first, _, rest = body.partition("\n")
        return rest if first.strip().isalpha() or not first.strip() else body
    return body


def _json_of(reply: LlmReply) -> Any:
    try:
        return json.loads(_strip_fence(reply.text))
    except ValueError as exc:
        raise ReplyNotJson(
            f"the reply of {reply.model} is not JSON ({exc}): {reply.text[:200]!r}"
        ) from None


OUTPUTS: Mapping[str, Callable[[LlmReply], Any]] = MappingProxyType(
    {
        "text": lambda r: r.text,
        "json": _json_of,
        "reply": lambda r: dict(r.raw),
    }
)


def _templates(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, template) of every template among the options."""
    out = [(k, options[k]) for k in ("system", "prompt") if isinstance(options.get(k), str)]
    for i, m in enumerate(options.get("messages") or []):
        if isinstance(m, Mapping) and isinstance(m.get("content"), str):
            out.append((f"messages[{i}].content", m["content"]))
    return out


def _message_problems(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    if not messages:
        return ["option 'messages' must not be empty"]
    out: list[str] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            out.append(f"messages[{i}] must be a mapping with 'role' and 'content'")
            continue
        extra = sorted(set(m) - {"role", "content"})
        if extra:
            out.append(f"messages[{i}]: unknown key {extra[0]!r} (known: content, role)")
        if m.get("role") not in ROLES:
            out.append(f"messages[{i}]: 'role' must be one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            out.append(f"messages[{i}]: 'content' must be a string (a template)")
    return out


@dataclass(frozen=True, slots=True)
class _Chat:
    def check(self, stage: Stage) -> list[str]:
        options = stage.options
        out = problems(options, CHAT_OPTIONS)
        has_prompt, has_messages = "prompt" in options, "messages" in options
        if has_prompt == has_messages:
            out.append(
                "options 'prompt' and 'messages' exclude each other"
                if has_prompt
                else "option 'prompt' (or 'messages') is required"
            )
        out.extend(_message_problems(options.get("messages")))
        inputs = ", ".join(stage.inputs) or "none"
        for where, template in _templates(options):
            try:
                names = prompting.fields(template)
            except ValueError as exc:
                out.append(f"option {where!r}: {exc}")
                continue
            out.extend(
                f"option {where!r} uses {{{n}}}, which is not an input of the stage "
                f"(inputs: {inputs})"
                for n in names
                if n not in stage.inputs
            )
        return out

    def output_of(self, stage: Stage) -> Any:
        return str if stage.options.get("output", "text") == "text" else Unknown

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        options = ctx.stage.options
        reply = ctx.llm.chat(options["model"], messages_of(options, inputs), **params_of(options))
        ctx.record_receipt(reply.receipt_id, reply.cost_usd)
        return OUTPUTS[options.get("output", "text")](reply)


@dataclass(frozen=True, slots=True)
class _Embed:
    def check(self, stage: Stage) -> list[str]:
        out = problems(stage.options, EMBED_OPTIONS)
        if "texts" not in stage.inputs:
            out.append("an embed stage needs an input named 'texts' (a list of strings)")
        return out

    def output_of(self, stage: Stage) -> Any:
        return list[list[float]]

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        texts = inputs.get("texts")
        if not isinstance(texts, list):
            raise StageFailed(
                f"input 'texts' must be a list of strings, not {type(texts).__name__}"
            )
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise StageFailed(
                f"input 'texts'[{bad}] is a {type(texts[bad]).__name__}, not a string"
            )
        reply = ctx.llm.embed(ctx.stage.options["model"], texts)
        ctx.record_receipt(reply.receipt_id, reply.cost_usd)
        return reply.vectors


OPERATIONS: Mapping[str, _Chat | _Embed] = MappingProxyType({"chat": _Chat(), "embed": _Embed()})


def messages_of(options: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chat messages of a stage, its templates filled from `inputs`."""
    out: list[dict[str, Any]] = []
    if "system" in options:
        out.append(
            {"role": "system", "content": prompting.render(options["system"], inputs, "system")}
        )
    if "prompt" in options:
        out.append({"role": "user", "content": prompting.render(options["prompt"], inputs)})
    for i, m in enumerate(options.get("messages") or []):
        content = prompting.render(m["content"], inputs, f"messages[{i}].content")
        out.append({"role": m["role"], "content": content})
    return out


def params_of(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in PASSED if k in options}


class LlmType:
    def check(self, stage: Stage) -> list[str]:
        op = stage.options.get("operation", "chat")
        if op not in OPERATIONS:
            return problems({"operation": op}, {"operation": _OPERATION})
        return OPERATIONS[op].check(stage)

    def output_of(self, stage: Stage) -> Any:
        # Asked even when check() found problems: an unknown operation is simply Unknown.
        op = OPERATIONS.get(stage.options.get("operation", "chat"))
        return Unknown if op is None else op.output_of(stage)

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        return OPERATIONS[ctx.stage.options.get("operation", "chat")].run(ctx, inputs)


LLM = LlmType()
