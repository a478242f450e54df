"""CPU per call of `compress_sync` on 1k, 4k and 16k-token conversations (o200k_base).

Each size comes plain (chat turns with a little code) and with repeated context (a
file and a log pasted in two turns out of three). Steps: whitespace, dedupe, trim,
with a 124k-token budget (a 128k window less 4k for the reply) unless the row says
"over budget" (half the conversation's tokens). Four ways of counting:

- cold:    `counting="exact"`, no shared counter: every text is tokenized on each call;
- warm:    `counting="exact"` with the app's `TokenCounter`, which has seen the
           conversation's earlier turns (a client resends its history every turn), so
           only the newest message is tokenized;
- auto:    `counting="auto"`, no shared counter: under budget, nothing is tokenized and
           the counts are characters / 4 estimates; over it, only the turns trimming
           keeps are tokenized (and the newest one it drops);
- gateway: `counting="auto"` with a warm counter, as the compress stage runs it.

Prints the median and 95th percentile of the calling thread's CPU time, in microseconds
per call. The target is 500 us for 4k tokens. Short by design (a few seconds): the
machine is shared.

    .venv/bin/python bench/compress_cpu.py
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aicp.compress import CountingMode, TokenCounter, compress_sync
from aicp.compress.eval import texts

STEPS = ["whitespace", "dedupe", "trim"]
BUDGET = 128_000 - 4_096
SIZES = (1_000, 4_000, 16_000)


def conversation(tokens: int, repeated: bool, seed: int = 1) -> dict[str, Any]:
    """About `tokens` o200k tokens of chat; with `repeated`, pasted context comes back."""
    rng = random.Random(seed)
    counter = TokenCounter(cache_size=0)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful assistant."}]
    # Pasted context sized to the conversation, so that even 1k holds two copies.
    module = f"```python\n{texts.python_module(rng, max(1, tokens // 1_000))}```"
    log = f"```\n{texts.log_lines(rng, max(4, tokens // 400))}\n```"

    def size() -> int:
        body = {"messages": messages}
        return compress_sync(body, "openai", "gpt-4o", steps=[], counter=counter).tokens_before

    turn = 0
    while size() < tokens:
        turn += 1
        ask = texts.prose(rng, rng.randint(1, 3))
        if repeated and turn % 3 != 2:
            ask += f"\n\nThe file again:\n\n{module}\n\nAnd the log:\n\n{log}"
        elif turn % 4 == 0:
            ask += f"\n\n```python\n{texts.python_module(rng, 1)}```"
        messages += [
            {"role": "user", "content": ask},
            {"role": "assistant", "content": texts.prose(rng, rng.randint(3, 7))},
        ]
    messages.append({"role": "user", "content": "What should I change first?"})
    return {"model": "gpt-4o", "messages": messages}


def timed(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """Median and 95th percentile of each call's time, in microseconds."""
    samples = []
    for call in calls:
        started = time.thread_time_ns()
        call()
        samples.append((time.thread_time_ns() - started) / 1_000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def row(label: str, body: dict[str, Any], limit: int, n: int) -> str:
    def cold() -> object:
        return compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=limit)

    def warm(counter: TokenCounter) -> object:
        return compress_sync(
            body, "openai", "gpt-4o", steps=STEPS, budget_tokens=limit, counter=counter
        )

    def auto(counter: TokenCounter | None = None) -> object:
        return compress_sync(
            body,
            "openai",
            "gpt-4o",
            steps=STEPS,
            budget_tokens=limit,
            counter=counter,
            counting="auto",
        )

    # Each warm call gets a counter that saw the previous request: the same history
    # less the last exchange (primed outside the timing).
    previous = {**body, "messages": body["messages"][:-3]}
    primed: dict[CountingMode, list[TokenCounter]] = {"exact": [], "auto": []}
    for _ in range(n):
        for counting, calls in primed.items():
            app = TokenCounter()
            compress_sync(
                previous,
                "openai",
                "gpt-4o",
                steps=STEPS,
                budget_tokens=limit,
                counter=app,
                counting=counting,
            )
            calls.append(app)
    out = compress_sync(body, "openai", "gpt-4o", steps=STEPS, budget_tokens=limit)
    cells = [
        timed([cold] * n),
        timed([partial(warm, c) for c in primed["exact"]]),
        timed([auto] * n),
        timed([partial(auto, c) for c in primed["auto"]]),
    ]
    line = f"{label:<28} {out.tokens_before:>7} {out.tokens_after:>7}   "
    return line + " ".join(f"{m:>8.0f} / {p:>6.0f}" for m, p in cells)


def main() -> None:
    head = f"{'conversation':<28} {'tokens':>7} {'after':>7}   "
    names = ("cold", "warm", "auto", "gateway")
    print(head + " ".join(f"{name:>17}" for name in names))
    print(" " * len(head) + " ".join(f"{'median / p95 us':>17}" for _ in names))
    compress_sync({"messages": []}, "openai", "gpt-4o", steps=STEPS)  # loads the tokenizer
    for size in SIZES:
        n = 300 if size < 16_000 else 60
        for repeated in (False, True):
            body = conversation(size, repeated)
            full = compress_sync(body, "openai", "gpt-4o", steps=[]).tokens_before
            label = f"{size // 1000}k {'repeated' if repeated else 'plain'}"
            print(row(label, body, BUDGET, n))
            if size == 4_000:
                print(row(f"{label}, over budget", body, full // 2, n))


if __name__ == "__main__":
    main()
