"""Index the cached side of every pair of a split, ask the query side, count.

One index per split holds every cached question, so a query can hit any
entry, not only its partner. A hit is right when the entry has the query's
meaning (its partner for a paraphrase, or another pair's question of that
meaning), wrong otherwise; precision counts both kinds over all queries.
Hit rate is the share of paraphrase queries served a right answer.

Targets, at the default threshold with the guard on: precision >= 99% and
hit rate >= 30%, on dev and on test. Tune on dev only (`--split dev
--errors` prints what went wrong there).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass

from aicp.memory.cache_eval.pairs import DEV, TEST, Pair, all_pairs, by_split
from aicp.memory.cache_key import SemanticRequest
from aicp.memory.embed import Embedder, WordLlamaEmbedder
from aicp.memory.semantic import DEFAULT_THRESHOLD, KeyFacts, SemanticCache
from aicp.memory.vectors import VectorIndex

MIN_PRECISION = 0.99
MIN_HIT_RATE = 0.30
SWEEP = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96)
MODEL = "eval-model"
NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class Outcome:
    pair: Pair
    served: str | None  # the meaning of the entry served, if any
    score: float | None

    @property
    def right(self) -> bool:
        return self.served is not None and self.served == self.pair.query_meaning

    @property
    def wrong(self) -> bool:
        return self.served is not None and self.served != self.pair.query_meaning


@dataclass(frozen=True, slots=True)
class Result:
    split: str
    threshold: float
    guard: bool
    outcomes: tuple[Outcome, ...]

    @property
    def hits(self) -> int:
        return sum(o.served is not None for o in self.outcomes)

    @property
    def precision(self) -> float:
        return sum(o.right for o in self.outcomes) / self.hits if self.hits else 1.0

    @property
    def hit_rate(self) -> float:
        paraphrases = [o for o in self.outcomes if o.pair.hit]
        return sum(o.right for o in paraphrases) / len(paraphrases) if paraphrases else 0.0

    @property
    def false_hits(self) -> int:
        return sum(o.wrong for o in self.outcomes)

    @property
    def met(self) -> bool:
        return self.precision >= MIN_PRECISION and self.hit_rate >= MIN_HIT_RATE


class Harness:
    """One split's index, built once and asked at several thresholds."""

    def __init__(
        self, pairs: Sequence[Pair], embedder: Embedder, common: Container[str] | None
    ) -> None:
        self.pairs = list(pairs)
        self.index: VectorIndex[KeyFacts] = VectorIndex(embedder.dims)
        self.meanings: dict[str, str] = {}
        self.with_guard = SemanticCache(embedder, self.index, common_words=common)
        self.without_guard = SemanticCache(embedder, self.index, guard=False)

    async def build(self) -> None:
        cached = {p.cached: p.cached_meaning for p in self.pairs}
        vectors = await self.with_guard.embed(list(cached))
        for n, ((text, meaning), vector) in enumerate(zip(cached.items(), vectors, strict=True)):
            entry = f"e{n}"
            self.meanings[entry] = meaning
            request = SemanticRequest(text, "")
            self.with_guard.add(
                entry, MODEL, request, vector, sensitivity="public", expires_at=1e18
            )
        self.queries = await self.with_guard.embed([p.query for p in self.pairs])

    def run(self, split: str, threshold: float, guard: bool = True) -> Result:
        cache = self.with_guard if guard else self.without_guard
        outcomes = []
        for pair, vector in zip(self.pairs, self.queries, strict=True):
            evidence = cache.lookup(
                MODEL,
                SemanticRequest(pair.query, ""),
                vector,
                now=0.0,
                sensitivity="public",
                threshold=threshold,
            )
            served = self.meanings[evidence.entry_id] if evidence.entry_id else None
            outcomes.append(Outcome(pair, served, evidence.score))
        return Result(split, threshold, guard, tuple(outcomes))


async def evaluate(
    splits: Sequence[str] = (DEV, TEST), *, common_words: bool = True
) -> dict[str, list[Result]]:
    """Per split: the sweep with the guard, then the default threshold without it."""
    embedder = WordLlamaEmbedder()
    common = embedder.common_words() if common_words else None
    pairs = all_pairs()
    results: dict[str, list[Result]] = {}
    for split in splits:
        harness = Harness(by_split(pairs, split), embedder, common)
        await harness.build()
        rows = [harness.run(split, t) for t in SWEEP]
        rows.append(harness.run(split, DEFAULT_THRESHOLD, guard=False))
        results[split] = rows
    return results


def default_row(rows: Sequence[Result]) -> Result:
    return next(r for r in rows if r.guard and r.threshold == DEFAULT_THRESHOLD)


def report(results: dict[str, list[Result]], errors: bool = False) -> list[str]:
    lines: list[str] = []
    for split, rows in results.items():
        head = default_row(rows)
        n_hit = sum(p.pair.hit for p in head.outcomes)
        lines.append(
            f"\n{split}: {len(head.outcomes)} pairs ({n_hit} paraphrases, "
            f"{len(head.outcomes) - n_hit} near-misses)"
        )
        lines.append(
            f"{'threshold':>10} {'guard':>6} {'hit rate':>9} {'precision':>10} {'false hits':>11}"
        )
        for r in rows:
            mark = "  <- default" if r is head else ""
            lines.append(
                f"{r.threshold:>10.2f} {'on' if r.guard else 'off':>6} {r.hit_rate:>9.1%} "
                f"{r.precision:>10.1%} {r.false_hits:>11}{mark}"
            )
        lines += _by_kind(head)
        if errors:
            lines += _errors(head)
    return lines


def _by_kind(result: Result) -> list[str]:
    total, right, wrong = Counter[str](), Counter[str](), Counter[str]()
    for o in result.outcomes:
        total[o.pair.kind] += 1
        right[o.pair.kind] += o.right
        wrong[o.pair.kind] += o.wrong
    para = [k for k in total if any(o.pair.hit and o.pair.kind == k for o in result.outcomes)]
    lines = [
        "  paraphrases served, by kind: "
        + ", ".join(f"{k} {right[k]}/{total[k]}" for k in sorted(para))
    ]
    misses = sorted(set(total) - set(para))
    lines.append(
        "  near-misses served (wrong), by kind: "
        + ", ".join(f"{k} {wrong[k]}/{total[k]}" for k in misses)
    )
    return lines


def _errors(result: Result) -> list[str]:
    lines = []
    for o in result.outcomes:
        if o.wrong:
            lines.append(
                f"  FALSE HIT {o.score:.3f} [{o.pair.kind}] {o.pair.cached!r} <- {o.pair.query!r}"
            )
    for o in result.outcomes:
        if o.pair.hit and not o.right:
            lines.append(f"  missed [{o.pair.kind}] {o.pair.cached!r} <- {o.pair.query!r}")
    return lines


def _texts(pair: Pair) -> str:
    return f"{pair.cached!r} <- {pair.query!r}"


def main(argv: Sequence[str] | None = None) -> int:
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m aicp.memory.cache_eval", description=__doc__)
    parser.add_argument("--split", choices=(DEV, TEST, "both"), default="both")
    parser.add_argument(
        "--errors", action="store_true", help="print false hits and missed paraphrases"
    )
    parser.add_argument(
        "--no-common-words", action="store_true", help="guard without the tokenizer's word list"
    )
    args = parser.parse_args(argv)
    splits = (DEV, TEST) if args.split == "both" else (args.split,)
    started = time.perf_counter()
    results = asyncio.run(evaluate(splits, common_words=not args.no_common_words))
    print("\n".join(report(results, errors=args.errors)))
    met = all(default_row(rows).met for rows in results.values())
    took = time.perf_counter() - started
    print(
        f"\ntargets (precision >= {MIN_PRECISION:.0%}, hit rate >= {MIN_HIT_RATE:.0%} at "
        f"{DEFAULT_THRESHOLD}): {'met' if met else 'MISSED'} ({took:.1f} s)"
    )
    return 0 if met else 1
