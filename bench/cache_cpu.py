"""CPU of the cache library: exact key, semantic split, guard facts, embedding, vector search.

Prints the median and p95 of single calls. The index is filled with wordllama
embeddings of generated questions (random words of the tokenizer's
vocabulary), 256 dims, and searched with a scope filter; the plain full
matrix-vector product over the same 100,000 vectors is printed for
comparison. BLAS runs on one thread (OPENBLAS_NUM_THREADS=1 unless set), as
it should inside a gateway worker; a second BLAS thread on this 2-core
machine shared with others measured slower, not faster.

Budgets: exact key on a miss <= 0.05 ms; search <= 2 ms over 100,000 entries.

    .venv/bin/python bench/cache_cpu.py [--entries 10000,100000]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson

from aicp.memory.cache_key import exact_key, semantic_request
from aicp.memory.embed import WordLlamaEmbedder
from aicp.memory.semantic import embedding_text, key_facts
from aicp.memory.vectors import Scope, VectorIndex

SYSTEM = "You are a helpful assistant for our outdoor shop. Answer briefly and cite product ids."
TURNS = [
    "Hi, I'm looking for waterproof hiking boots for a trip to Scotland in October. What "
    "would you recommend under 150 euros? I have wide feet and usually wear size 44.",
    "For wide feet and wet conditions, the Trailmaster GTX Wide (id 4471) is a good fit at "
    "139 euros. It has a Gore-Tex membrane, a Vibram sole and comes in sizes 39 to 47.",
    "Thanks! How does it compare with the Highland Pro in weight and ankle support? And can I "
    "return them if they don't fit after a short walk at home?",
]
SCOPE = Scope(key="k3")
QUESTION = (
    "Could you explain in a few sentences how the TCP three-way handshake works and why "
    "it is needed before data can be sent between two hosts on a network today?"
)


def body(turns: int, repeat: int = 1) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for _ in range(repeat):
        for i, text in enumerate(TURNS[:turns]):
            messages.append({"role": "assistant" if i % 2 else "user", "content": text})
    return {"model": "fast", "messages": messages, "temperature": 0.2, "stream": True}


def timed(call: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and p95 of `n` single calls, in microseconds."""
    call()
    samples = []
    for _ in range(n):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def row(name: str, figures: tuple[float, float], unit: str = "us") -> None:
    scale = 1000 if unit == "ms" else 1
    median, p95 = (f / scale for f in figures)
    print(f"{name:<44}{median:>10.3f} {unit}{p95:>10.3f} {unit}")


def corpus(embedder: WordLlamaEmbedder, n: int, rng: np.random.Generator) -> np.ndarray:
    words = np.array(sorted(embedder.common_words()))
    texts = [" ".join(rng.choice(words, int(rng.integers(4, 16)))) for _ in range(n)]
    return embedder.embed(texts)


def search(index: VectorIndex[int], queries: Iterator[np.ndarray]) -> None:
    index.search("m", next(queries), 0.92, now=0.0, sensitivity="internal", scope=SCOPE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.entries.split(",")]
    print(f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}\n")
    print(f"{'':<44}{'median':>13}{'p95':>13}")
    for name, b in (("short", body(1)), ("typical", body(3)), ("long", body(3, repeat=4))):
        size = len(orjson.dumps(b))
        row(
            f"exact key, {name} chat (~{size} B)",
            timed(lambda b=b: exact_key("openai", "chat", "m", b), 5000),
        )
    row(
        "semantic split, typical chat",
        timed(lambda: semantic_request("openai", "chat", "m", body(3)), 3000),
    )
    row("guard facts, 30-word question", timed(lambda: key_facts(QUESTION), 3000))

    embedder = WordLlamaEmbedder()
    common = embedder.common_words()
    row("guard facts with common words", timed(lambda: key_facts(QUESTION, common), 3000))
    prepared = [embedding_text(QUESTION)]
    row("embed, 30-word question (wordllama)", timed(lambda: embedder.embed([QUESTION]), 2000))
    row("embed, the same as the cache prepares it", timed(lambda: embedder.embed(prepared), 2000))
    row(
        "embed, 8-word question",
        timed(lambda: embedder.embed(["what is the capital of france"]), 2000),
    )

    rng = np.random.default_rng(0)
    vectors = corpus(embedder, max(sizes), rng)
    picks = rng.integers(0, max(sizes), args.queries)
    noise = rng.standard_normal((args.queries, embedder.dims)).astype(np.float32) * 0.01
    for n in sizes:
        index: VectorIndex[int] = VectorIndex(embedder.dims)
        started = time.perf_counter()
        for i in range(n):
            index.add(str(i), "m", vectors[i], i, scope=Scope(key=f"k{i % 8}"))
        took = (time.perf_counter() - started) / n * 1e6
        print(f"\nindex of {n:,} entries: {took:.1f} us per add")
        queries = iter(vectors[picks % n] + noise)
        row(
            f"search {n:,} x {embedder.dims} (split, filtered)",
            timed(lambda index=index, queries=queries: search(index, queries), args.queries - 1),
            "ms",
        )
    # The worst case: every entry a near-duplicate of the query, so the bound prunes
    # nothing and the search multiplies the whole matrix.
    n = max(sizes)
    centre = vectors[0]
    crowd = centre + rng.standard_normal((n, embedder.dims)).astype(np.float32) * 0.02
    index = VectorIndex(embedder.dims)
    for i in range(n):
        index.add(str(i), "m", crowd[i], i, scope=Scope(key=f"k{i % 8}"))
    queries = iter(crowd[picks % n] + noise)
    row(
        f"search {n:,} near-duplicates (worst case)",
        timed(lambda: search(index, queries), args.queries - 1),
        "ms",
    )
    matrix = np.ascontiguousarray(vectors[: max(sizes)])
    query = vectors[0]
    row(
        f"plain product {max(sizes):,} x {embedder.dims} (baseline)",
        timed(lambda: matrix @ query, 200),
        "ms",
    )


if __name__ == "__main__":
    main()
