"""`compress` and `compress_sync`: the steps, run in a fixed order over one request body.

Steps run in the order of `STEP_NAMES` whatever order they are named in: normalising
whitespace first lets `dedupe` match a block pasted again with different spacing,
and deduplicating before `trim` means trimming drops fewer turns. `summarise` is
`trim` with a summary of what it drops, so naming it implies `trim`.

On the hot path, pass the app's `TokenCounter` (made once, in the lifespan): a
client resends its history every turn, and the counter remembers each text's count.
Without it every text is tokenized on every call, at about 110 ns a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aicp.compress import trim as trimming
from aicp.compress import walk
from aicp.compress.dedupe import dedupe
from aicp.compress.forms import form_for
from aicp.compress.tokens import TokenCounter
from aicp.compress.whitespace import normalise_message, normalise_top
from aicp.compress.work import Tally, Work
from aicp.protocol.jsonutil import Json

STEP_NAMES = ("whitespace", "dedupe", "trim", "summarise")

#: Gets the messages `trim` would drop, oldest first (it must not change them) and
#: returns their summary.
Summariser = Callable[[list[Json]], Awaitable[str]]

#: "exact" counts every message with the tokenizer. "auto" first bounds the request
#: (UTF-8 bytes are at least its tokens) and, when the bound is within the budget (or
#: there is none), reports characters / 4 estimates instead (`exact` is then False):
#: nothing can need trimming, so nothing needs tokenizing. Over the bound, with `trim`,
#: only what trimming keeps is tokenized (and the newest turn it drops): the result is
#: counted exactly, and `tokens_before` is in part an estimate (`counting` says so).
CountingMode = Literal["exact", "auto"]


@dataclass(frozen=True, slots=True)
class AppliedStep:
    name: str
    tokens_saved: int
    #: What it changed, e.g. {"blocks_removed": 2} or {"messages_dropped": 6}.
    changes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Compressed:
    """A compressed request body and what it cost and saved."""

    body: Json
    tokens_before: int
    tokens_after: int
    steps_applied: list[AppliedStep]
    #: Whether the counts come from the model's own tokenizer (see `counting`): with
    #: counting "auto", `tokens_after` is, and `tokens_before` may be in part estimated.
    exact: bool
    #: How tokens were counted, e.g. "o200k_base" or "o200k_base x1.20".
    counting: str
    #: The request is still over the budget (system, tools and last turn alone exceed it).
    over_budget: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.steps_applied)

    def receipt(self) -> dict[str, object]:
        """A small JSON object for the request's receipt."""
        out: dict[str, object] = {
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "exact": self.exact,
            "counting": self.counting,
            "steps": {s.name: s.tokens_saved for s in self.steps_applied},
        }
        if self.over_budget:
            out["over_budget"] = True
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(slots=True)
class _Run:
    """One call's state: the work, the options, and what each step did."""

    work: Work
    budget: int | None
    min_block_chars: int
    #: What each step changed, and the totals before and after it; read at the end,
    #: when the counts of pending work have settled.
    steps: list[walk.Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, name: str, before: Tally, changes: dict[str, int]) -> None:
        if changes:
            self.steps.append((name, before, self.work.tally(), changes))

    def applied(self) -> list[AppliedStep]:
        tokens = self.work.tokens_of
        return [
            AppliedStep(name, tokens(before) - tokens(after), changes)
            for name, before, after, changes in self.steps
        ]


def _whitespace(run: _Run) -> dict[str, int]:
    work = run.work
    changed = sum(normalise_message(work, i) for i in range(len(work.messages)))
    changed += normalise_top(work)
    return {"texts_changed": changed} if changed else {}


def _dedupe(run: _Run) -> dict[str, int]:
    return dedupe(run.work, run.min_block_chars)


def _trim(run: _Run) -> dict[str, int]:
    if run.budget is None:
        return {}
    dropped = trimming.plan(run.work, run.budget)
    trimming.apply(run.work, dropped)
    n = sum(map(len, dropped))
    return {"messages_dropped": n} if n else {}


_SYNC_STEPS: dict[str, Callable[[_Run], dict[str, int]]] = {
    "whitespace": _whitespace,
    "dedupe": _dedupe,
    "trim": _trim,
}


def _run_steps(run: _Run, chosen: frozenset[str]) -> None:
    work = run.work
    if work.pending and run.budget is not None:  # over the bound, trimming: one walk
        run.steps += walk.fitted(work, run.budget, chosen, run.min_block_chars)
        return
    for name, step in _SYNC_STEPS.items():
        if name in chosen:
            at = work.tally()
            run.record(name, at, step(run))


def _check_steps(steps: Sequence[str]) -> frozenset[str]:
    if isinstance(steps, str):
        raise TypeError("steps must be a sequence of step names, not a string")
    chosen = frozenset(steps)
    unknown = sorted(chosen - set(STEP_NAMES))
    if unknown:
        raise ValueError(f"unknown compression steps {unknown}; known: {list(STEP_NAMES)}")
    return chosen


def _start(
    body: Json,
    protocol: str,
    model: str,
    budget: int | None,
    min_block_chars: int,
    counter: TokenCounter | None,
    counting: CountingMode,
    trim: bool,
) -> _Run:
    form = form_for(protocol)
    counts = (counter or TokenCounter(cache_size=0)).bind(model)
    auto = counting == "auto"
    work = Work.start(body, form, counts, auto=auto, budget=budget, pending=auto and trim)
    run = _Run(work, budget, min_block_chars)
    if not counts.tokenizer and (work.pending or not work.estimated):
        run.notes.append("bpe-openai is not installed: token counts are estimates")
    return run


def _label(run: _Run, start: Tally) -> str:
    counting = run.work.counting
    if run.work.estimated:
        return f"chars/4 x{counting.encoding.factor:.2f} (within budget, not tokenized)"
    if start.estimated and run.steps:
        return f"{counting.label} (tokens_before in part estimated)"
    return counting.label


def _finish(run: _Run, start: Tally, body: Json) -> Compressed:
    work = run.work
    after = work.total()
    return Compressed(
        body=work.body() if run.steps else body,
        tokens_before=work.tokens_of(start),
        tokens_after=after,
        steps_applied=run.applied(),
        exact=work.counting.exact and not work.estimated,
        counting=_label(run, start),
        over_budget=run.budget is not None and after > run.budget,
        notes=run.notes,
    )


def compress_sync(
    body: Json,
    protocol: str,
    model: str,
    *,
    steps: Sequence[str],
    budget_tokens: int | None = None,
    min_block_chars: int = 200,
    counter: TokenCounter | None = None,
    counting: CountingMode = "exact",
) -> Compressed:
    """Compress a chat request body without a summariser (no awaits: for the hot path).

    `protocol` is "openai" (chat completions) or "anthropic" (messages); `model`
    picks the tokenizer. `budget_tokens` is the context window less the tokens kept
    for the reply. The input body is never changed; `Compressed.body` is a new one,
    sharing every part that no step changed.
    """
    chosen = _check_steps(steps)
    if "summarise" in chosen:
        raise ValueError("the summarise step needs compress() and a summariser")
    run = _start(
        body, protocol, model, budget_tokens, min_block_chars, counter, counting, "trim" in chosen
    )
    start = run.work.tally()
    _run_steps(run, chosen)
    return _finish(run, start, body)


async def compress(
    body: Json,
    protocol: str,
    model: str,
    *,
    steps: Sequence[str],
    budget_tokens: int | None = None,
    summarise: Summariser | None = None,
    min_block_chars: int = 200,
    counter: TokenCounter | None = None,
    counting: CountingMode = "exact",
) -> Compressed:
    """`compress_sync`, plus the `summarise` step: turns that trimming would drop are
    replaced by `await summarise(messages)`. Without a need to drop turns, the
    summariser is not called. If it fails, plain trimming stands in and a note says so.
    """
    chosen = _check_steps(steps)
    if "summarise" in chosen and summarise is None:
        raise ValueError("the summarise step needs a summariser")
    # Summarising reads the counts of the turns it replaces: they are all counted.
    trim = "trim" in chosen and "summarise" not in chosen
    run = _start(body, protocol, model, budget_tokens, min_block_chars, counter, counting, trim)
    start = run.work.tally()
    _run_steps(run, chosen - {"trim"} if "summarise" in chosen else chosen)
    if "summarise" in chosen and summarise is not None:
        await _summarise(run, summarise)
    return _finish(run, start, body)


async def _summarise(run: _Run, summarise: Summariser) -> None:
    work, budget = run.work, run.budget
    if budget is None:
        return
    at = work.tally()
    dropped = trimming.plan(work, budget)
    if not dropped:
        return
    messages = trimming.dropped_messages(work, dropped)
    try:
        summary = trimming.summary_text(await summarise(messages), len(messages))
    except Exception as exc:  # the request goes on trimmed: a summary is an optimisation
        run.notes.append(f"summariser failed ({type(exc).__name__}): trimmed instead")
        run.record("trim", at, _trim(run))
        return
    cost = work.counting.count(summary) + 2
    freed = sum(work.tokens[i] for unit in dropped for i in unit)
    if cost >= freed:
        run.notes.append("the summary was longer than what it replaced: trimmed instead")
        run.record("trim", at, _trim(run))
        return
    # Room for the summary may cost more turns; those go unsummarised.
    dropped = trimming.plan(work, budget - cost)
    n = sum(map(len, dropped))
    trimming.apply(work, dropped, summary)
    changes = {"messages_summarised": len(messages)}
    if n > len(messages):
        changes["messages_dropped"] = n - len(messages)
    run.record("summarise", at, changes)
