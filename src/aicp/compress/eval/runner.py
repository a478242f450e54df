"""Tokens saved and facts kept on the eval set, against the targets; exit 1 on a miss."""

from __future__ import annotations

import argparse
import asyncio
import json
import json.decoder
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aicp.guardrails.eval as guardrails_eval
from aicp.compress.eval import texts
from aicp.compress.eval.checks import missing_facts, problems
from aicp.compress.eval.conversations import (
    CLEAN,
    KINDS,
    OVER_BUDGET,
    REPEATED,
    SUMMARISE,
    Case,
    cases,
    extractive_summary,
)
from aicp.compress.pipeline import compress
from aicp.compress.tokens import CL100K, O200K, TokenCounter

#: The least share of tokens removed, over all conversations with repeated context.
REPEATED_TARGET = 0.30
STEPS = ("whitespace", "dedupe", "trim")


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    before: int
    after: int
    budget: int | None
    steps: tuple[str, ...]
    missing: tuple[str, ...]
    problems: tuple[str, ...]
    unchanged: bool
    exact: bool

    @property
    def saved(self) -> float:
        return 1 - self.after / self.before if self.before else 0.0

    @property
    def failures(self) -> list[str]:
        found = [f"missing fact {f!r}" for f in self.missing] + list(self.problems)
        if self.budget is not None and self.after > self.budget:
            found.append(f"{self.after} tokens is over the budget of {self.budget}")
        if self.case.kind == CLEAN and not self.unchanged:
            found.append("changed a conversation with nothing to compress")
        return found


async def run_case(case: Case, counter: TokenCounter) -> Outcome:
    steps = [*STEPS, "summarise"] if case.kind == SUMMARISE else list(STEPS)
    budget = case.budget
    if case.budget_share is not None:
        full = await compress(case.body, case.protocol, case.model, steps=[], counter=counter)
        budget = int(full.tokens_before * case.budget_share)
    result = await compress(
        case.body,
        case.protocol,
        case.model,
        steps=steps,
        budget_tokens=budget,
        summarise=extractive_summary if case.kind == SUMMARISE else None,
        counter=counter,
    )
    return Outcome(
        case=case,
        before=result.tokens_before,
        after=result.tokens_after,
        budget=budget if case.kind in (OVER_BUDGET, SUMMARISE) else None,
        steps=tuple(s.name for s in result.steps_applied),
        missing=tuple(missing_facts(result.body, case.protocol, case.needs)),
        problems=tuple(problems(result.body, case.protocol)),
        unchanged=result.body is case.body and not result.steps_applied,
        exact=result.exact,
    )


async def evaluate(seed: int = 7) -> list[Outcome]:
    counter = TokenCounter()
    return [await run_case(case, counter) for case in cases(seed)]


def kind_saved(outcomes: Sequence[Outcome], kind: str) -> float:
    group = [o for o in outcomes if o.case.kind == kind]
    before = sum(o.before for o in group)
    return 1 - sum(o.after for o in group) / before if before else 0.0


def missed_targets(outcomes: Sequence[Outcome]) -> list[str]:
    missed = [f"{o.case.protocol}/{o.case.name}: {f}" for o in outcomes for f in o.failures]
    share = kind_saved(outcomes, REPEATED)
    if share < REPEATED_TARGET:
        missed.append(f"repeated context: {share:.1%} fewer tokens, target {REPEATED_TARGET:.0%}")
    return missed


def table(outcomes: Sequence[Outcome]) -> str:
    head = f"{'kind':<12} {'protocol':<10} {'conversation':<26} {'before':>7} {'after':>7}"
    lines = [f"{head} {'saved':>6} {'budget':>7}  {'facts':<6} {'valid':<6} steps"]
    for o in outcomes:
        c = o.case
        budget = "" if o.budget is None else str(o.budget)
        facts = "ok" if not o.missing else f"-{len(o.missing)}"
        valid = "ok" if not o.problems else "NO"
        row = f"{c.kind:<12} {c.protocol:<10} {c.name:<26} {o.before:>7} {o.after:>7}"
        steps = ",".join(o.steps)
        lines.append(f"{row} {o.saved:>6.1%} {budget:>7}  {facts:<6} {valid:<6} {steps}")
    lines.append("")
    for kind in KINDS:
        group = [o for o in outcomes if o.case.kind == kind]
        kept = sum(not o.missing for o in group)
        before, after = sum(o.before for o in group), sum(o.after for o in group)
        lines.append(
            f"{kind:<12} {len(group):>3} conversations {before:>8} -> {after:>8} tokens "
            f"({kind_saved(outcomes, kind):.1%} fewer), facts kept in {kept}/{len(group)}"
        )
    return "\n".join(lines)


def _real_texts() -> dict[str, str]:
    """Text not written by our generators: the guardrails eval's handwritten prompts
    (questions people type, some with code) and a module of Python's standard library."""
    data = Path(guardrails_eval.__file__).parent / "data" / "benign.jsonl"
    prompts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line]
    return {
        "prompts": "\n\n".join(prompts),
        "stdlib py": Path(json.decoder.__file__).read_text(),
    }


def approximations(seed: int = 7) -> str:
    """How far the estimates sit from o200k_base on each kind of text."""
    counter = TokenCounter(cache_size=0)
    o200k = counter.bind("gpt-4o")
    cl100k = counter.bind("gpt-4")
    if not (o200k.exact and cl100k.exact):
        return "approximations: bpe-openai is not installed, nothing to compare with"
    rng = random.Random(seed)
    samples = {
        **_real_texts(),
        "gen prose": texts.prose(rng, 120),
        "gen python": texts.python_module(rng, 30),
        "gen logs": texts.log_lines(rng, 120),
        "gen json": texts.json_document(rng, 40),
    }
    lines = [f"estimates against {O200K} (signed error of the estimate)", ""]
    lines.append(f"{'text':<11} {'chars':>7} {O200K:>11} {'chars/4':>9} {CL100K:>12}")
    for name, text in samples.items():
        exact = o200k.count(text)
        quarter = len(text) / 4 / exact - 1
        cl = cl100k.count(text) / exact - 1
        lines.append(f"{name:<11} {len(text):>7} {exact:>11} {quarter:>+9.1%} {cl:>+12.1%}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aicp.compress.eval", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes = asyncio.run(evaluate(args.seed))
    print(table(outcomes))
    print()
    print(approximations(args.seed))
    exact = all(o.exact for o in outcomes if o.case.protocol == "openai")
    print(
        f"\n{len(outcomes)} conversations in {time.perf_counter() - started:.1f} s; "
        f"OpenAI counts exact: {exact}"
    )
    missed = missed_targets(outcomes)
    for line in missed:
        print(f"MISSED {line}")
    if not missed:
        print(
            f"targets met: >= {REPEATED_TARGET:.0%} fewer tokens with repeated context, "
            "every fact kept, every request valid and within budget, clean ones untouched"
        )
    return 1 if missed else 0
