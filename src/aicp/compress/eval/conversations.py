"""The eval set: long multi-turn conversations, generated from a seed, in both protocols.

Each case knows the facts its last question needs (exact strings). Four kinds:

- repeated: files, logs and documents pasted again in later turns, re-read by tools,
  or a message sent twice (target: 30% fewer tokens over the kind);
- over budget: long histories, many with tool calls, trimmed to a budget;
- summarise: over budget, with the needed fact only in an old turn, so only the
  summary (from a fake extractive summariser) can keep it;
- clean: nothing to compress (target: not a byte changed).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aicp.compress.eval import texts
from aicp.protocol.jsonutil import Json

REPEATED, OVER_BUDGET, SUMMARISE, CLEAN = "repeated", "over budget", "summarise", "clean"
KINDS = (REPEATED, OVER_BUDGET, SUMMARISE, CLEAN)
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}
REMEMBER = "remember:"

TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the repository.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Path to the file."}},
                "required": ["path"],
            },
        },
    }
]
TOOLS_ANTHROPIC = [
    {
        "name": "read_file",
        "description": "Read a file of the repository.",
        "input_schema": TOOLS_OPENAI[0]["function"]["parameters"],  # type: ignore[index]
    }
]


@dataclass(frozen=True, slots=True)
class Turn:
    """A protocol-neutral message: user or assistant text, or a tool call with its result."""

    role: str  # "user", "assistant" or "call"
    text: str
    result: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    kind: str
    protocol: str
    model: str
    body: Json
    needs: tuple[str, ...]
    budget: int | None = None
    #: Budget as a share of the uncompressed request's tokens (set by the runner).
    budget_share: float | None = None


def render(protocol: str, system: str, turns: list[Turn], tools: bool = False) -> Json:
    """A request body in OpenAI chat or Anthropic messages form."""
    messages: list[Json] = []
    calls = 0
    if protocol == "openai":
        messages.append({"role": "system", "content": system})
    for turn in turns:
        if turn.role != "call":
            messages.append({"role": turn.role, "content": turn.text})
            continue
        calls += 1
        call_id = f"call_{calls:04d}"
        if protocol == "openai":
            arguments = json.dumps({"path": turn.text})
            function = {"name": "read_file", "arguments": arguments}
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call_id, "content": turn.result})
        else:
            use = {"type": "tool_use", "id": call_id, "name": "read_file"}
            said: list[Any] = [{"type": "text", "text": f"Reading {turn.text}."}]
            content = [*said, {**use, "input": {"path": turn.text}}]
            messages.append({"role": "assistant", "content": content})
            result = {"type": "tool_result", "tool_use_id": call_id, "content": turn.result}
            messages.append({"role": "user", "content": [result]})
    body: Json = {"model": MODELS[protocol], "max_tokens": 1024, "messages": messages}
    if protocol == "anthropic":
        body["system"] = system
    if tools:
        body["tools"] = TOOLS_OPENAI if protocol == "openai" else TOOLS_ANTHROPIC
    return body


def _answer(rng: random.Random) -> Turn:
    return Turn("assistant", texts.prose(rng, rng.randint(3, 6)))


def _chat(rng: random.Random, turns: int) -> list[Turn]:
    out: list[Turn] = []
    for _ in range(turns):
        out += [Turn("user", texts.prose(rng, rng.randint(1, 3))), _answer(rng)]
    return out


def _fenced(code: str, lang: str = "") -> str:
    return f"```{lang}\n{code.rstrip()}\n```"


# --- repeated context -------------------------------------------------------------------


def file_pasted_again(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"RETRY_LIMIT = {rng.randint(3, 19)}"
    module = _fenced(texts.python_module(rng, 14, fact), "python")
    turns = [
        Turn("user", f"Here is worker.py:\n\n{module}\n\nWhy does the retry loop never stop?"),
        _answer(rng),
        *_chat(rng, 2),
        Turn(
            "user",
            f"I reverted my edits, so this is worker.py as it is now:\n\n{module}\n\n"
            "What is the retry limit set to, and where is it read?",
        ),
    ]
    return turns, (fact,), False


def log_pasted_three_times(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"ERROR service=billing code=E{rng.randint(1000, 9999)} upstream reset"
    log = _fenced(texts.log_lines(rng, 60, fact))
    turns = [Turn("user", f"The overnight log:\n\n{log}\n\nAnything odd?"), _answer(rng)]
    turns += [Turn("user", f"Same log, look again at the errors:\n\n{log}"), _answer(rng)]
    turns += _chat(rng, 1)
    last = f"One last time, the log:\n\n{log}\n\nWhich error code did billing log?"
    turns.append(Turn("user", last))
    return turns, (fact,), False


def document_and_config(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"The rollout freeze starts on day {rng.randint(2, 28)} of each quarter."
    doc = texts.markdown_document(rng, 6, fact)
    config = _fenced(texts.json_document(rng, 8), "json")
    turns = [
        Turn("user", f"Our design notes:\n\n{doc}\n\nAnd the limits file:\n\n{config}"),
        _answer(rng),
        *_chat(rng, 2),
        Turn(
            "user",
            f"Limits again, after the review:\n\n{config}\n\nNotes for reference:\n\n"
            f"{doc}\n\nWhen does the rollout freeze start?",
        ),
    ]
    return turns, (fact,), False


def agent_reads_file_twice(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"TIMEOUT_SECONDS = {rng.randint(5, 90)}"
    module = texts.python_module(rng, 12, fact)
    other = texts.python_module(rng, 6)
    turns = [
        Turn("user", "Find why requests to the worker time out."),
        Turn("call", "src/worker.py", module),
        _answer(rng),
        Turn("call", "src/other.py", other),
        Turn("call", "src/worker.py", module),
        Turn("assistant", "The timeout comes from worker.py."),
        Turn("user", "Quote the timeout constant exactly."),
    ]
    return turns, (fact,), True


def message_sent_twice(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"order id ORD-{rng.randint(100000, 999999)}"
    log = _fenced(texts.log_lines(rng, 30))
    ask = Turn("user", f"Checkout failed for {fact}. Logs:\n\n{log}\n\nWhat happened?")
    turns = [*_chat(rng, 1), ask, ask, _answer(rng), Turn("user", "Which order was it?")]
    return turns, (fact,), False


def messy_notes_pasted_again(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"Budget owner: team {rng.choice(('falcon', 'otter', 'lynx'))}."
    notes = texts.messy(rng, 24) + "\n\n" + fact
    turns = [
        Turn("user", f"My notes:\n\n{notes}"),
        _answer(rng),
        Turn("user", f"Notes again, unchanged:\n\n{notes}\n\nWho owns the budget?"),
    ]
    return turns, (fact,), False


def file_edited_and_pasted(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    """Only the unchanged functions repeat; the edited constant must survive in both."""
    old, new = f"BATCH_SIZE = {rng.randint(2, 50)}", f"BATCH_SIZE = {rng.randint(51, 99)}"
    state = rng.getstate()
    before = _fenced(texts.python_module(rng, 10, old), "python")
    rng.setstate(state)
    after = _fenced(texts.python_module(rng, 10, new), "python")
    turns = [
        Turn("user", f"This is batcher.py:\n\n{before}\n\nIs the batch size too small?"),
        _answer(rng),
        Turn("user", f"I raised it:\n\n{after}\n\nWhat was it before, and what is it now?"),
    ]
    return turns, (old, new), False


REPEATED_BUILDERS = (
    file_pasted_again,
    log_pasted_three_times,
    document_and_config,
    agent_reads_file_twice,
    message_sent_twice,
    messy_notes_pasted_again,
    file_edited_and_pasted,
)


# --- over budget ------------------------------------------------------------------------


def long_history(rng: random.Random, old_fact: str = "") -> tuple[list[Turn], str]:
    """Forty turns; `old_fact` in the second; the last question needs the last answer."""
    turns = _chat(rng, 40)
    if old_fact:
        turns[2] = Turn("user", f"{texts.prose(rng, 2)} Please {REMEMBER} {old_fact}")
    recent = f"The meeting moved to room {rng.randint(100, 999)}."
    turns += [Turn("user", "Where is the meeting now?"), Turn("assistant", recent)]
    turns.append(Turn("user", "Repeat the room, and the codename."))
    return turns, recent


def tool_history(rng: random.Random) -> tuple[list[Turn], str]:
    """Fifteen turns of an agent reading files, each answered."""
    turns: list[Turn] = []
    for k in range(15):
        turns.append(Turn("user", f"Step {k + 1}: {texts.sentence(rng)}"))
        for _ in range(rng.randint(1, 3)):
            path = f"src/{rng.choice(('a', 'b', 'c'))}_{rng.randint(1, 99)}.py"
            turns.append(Turn("call", path, texts.python_module(rng, rng.randint(2, 5))))
        turns.append(_answer(rng))
    fact = f"LAST_STEP_TOKEN = {rng.getrandbits(32):08x}"
    turns += [
        Turn("user", "Read the settings file."),
        Turn("call", "src/settings.py", texts.python_module(rng, 2, fact)),
        Turn("user", "What is the last step token, and the codename?"),
    ]
    return turns, fact


# --- clean ------------------------------------------------------------------------------


def clean_chat(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    turns = _chat(rng, 3)
    fact = turns[-1].text.split(".")[0]
    return [*turns, Turn("user", "Summarise your last answer.")], (fact,), False


def clean_code_question(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    # Aligned spacing inside the fence is code and must be left alone.
    code = "x      = 1\ny      = 2\n\n\n\n\nresult = x  +  y"
    text = f"Why does this print 3?\n\n{_fenced(code, 'python')}"
    return [Turn("user", text)], ("result = x  +  y",), False


def clean_tool_call(rng: random.Random) -> tuple[list[Turn], tuple[str, ...], bool]:
    fact = f"PORT = {rng.randint(1024, 9999)}"
    turns = [
        Turn("user", "Which port does the service use?"),
        Turn("call", "src/settings.py", texts.python_module(rng, 1, fact)),
        Turn("assistant", "It is set in settings.py."),
        Turn("user", "Quote the line."),
    ]
    return turns, (fact,), True


CLEAN_BUILDERS = (clean_chat, clean_code_question, clean_tool_call)


def cases(seed: int = 7) -> Iterator[Case]:
    """The whole eval set, the same for the same seed."""
    codename = "Project codename: BLUE-HERON."
    system = f"You are a careful engineering assistant. {codename}"
    for protocol in ("openai", "anthropic"):
        model = MODELS[protocol]
        for k, build in enumerate(REPEATED_BUILDERS):
            rng = random.Random(f"{seed}:{protocol}:{k}")
            turns, needs, tools = build(rng)
            body = render(protocol, system, turns, tools)
            yield Case(build.__name__, REPEATED, protocol, model, body, needs)
        rng = random.Random(f"{seed}:{protocol}:history")
        turns, recent = long_history(rng)
        body = render(protocol, system, turns)
        needs = (recent, codename)
        yield Case("long_history", OVER_BUDGET, protocol, model, body, needs, None, 0.35)
        turns, fact = tool_history(rng)
        body = render(protocol, system, turns, tools=True)
        yield Case("tool_history", OVER_BUDGET, protocol, model, body, (fact, codename), None, 0.4)
        old = f"the customer id is CUST-{rng.randint(10000, 99999)}"
        turns, recent = long_history(rng, old)
        body = render(protocol, system, turns)
        needs = (old, recent, codename)
        yield Case("summarised_history", SUMMARISE, protocol, model, body, needs, None, 0.35)
        for k, build in enumerate(CLEAN_BUILDERS):
            rng = random.Random(f"{seed}:{protocol}:clean:{k}")
            turns, needs, tools = build(rng)
            body = render(protocol, system, turns, tools)
            yield Case(build.__name__, CLEAN, protocol, model, body, needs, 200_000)


async def extractive_summary(messages: list[Json]) -> str:
    """A fake summariser: the sentences of the dropped messages that ask to be remembered."""
    found: list[str] = []
    for message in messages:
        content = message.get("content")
        for text in [content] if isinstance(content, str) else []:
            found += [s.strip() for s in text.split("Please") if REMEMBER in s]
    return "\n".join(found) or "(nothing to remember)"
