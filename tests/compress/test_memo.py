"""The app's memo of per-text results: a warm request compresses exactly as a cold one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

import pytest

from aicp.compress import TokenCounter, compress_sync, dedupe
from aicp.compress.eval.conversations import REPEATED, Case, cases
from aicp.compress.memo import BLOCK_BYTES, MIN_CHARS, TextMemo, remembered
from aicp.compress.pipeline import CountingMode
from aicp.protocol.jsonutil import Json

T = TypeVar("T")
STEPS = ["whitespace", "dedupe", "trim"]


def _run(
    case: Case, budget: int | None, counting: CountingMode, counter: TokenCounter | None, body: Json
) -> tuple[Json, int, list[tuple[str, dict[str, int]]]]:
    out = compress_sync(
        body,
        case.protocol,
        case.model,
        steps=STEPS,
        budget_tokens=budget,
        counter=counter,
        counting=counting,
    )
    return out.body, out.tokens_after, [(s.name, s.changes) for s in out.steps_applied]


@pytest.mark.parametrize("counting", ["exact", "auto"])
@pytest.mark.parametrize("share", [None, 0.5])
def test_a_counter_that_saw_the_history_gives_the_same_body_and_counts(
    counting: CountingMode, share: float | None
) -> None:
    app = TokenCounter()
    for case in cases():
        full = compress_sync(case.body, case.protocol, case.model, steps=[]).tokens_before
        budget = None if share is None else max(1, int(full * share))
        cold = _run(case, budget, counting, None, case.body)
        assert _run(case, budget, counting, app, case.body) == cold  # first time through
        # The next turns resend the same texts as new objects (parsed JSON again).
        for _ in range(2):
            assert _run(case, budget, counting, app, copy.deepcopy(case.body)) == cold


def test_texts_left_as_they_are_stay_the_same_objects_when_remembered() -> None:
    text = "A paragraph of ordinary prose that needs no change at all. " * 10
    body = {"messages": [{"role": "user", "content": text}]}
    app = TokenCounter()
    for _ in range(2):
        out = compress_sync(body, "openai", "gpt-4o", steps=STEPS, counter=app)
        assert out.body["messages"][0]["content"] is text
        assert not out.changed


def test_the_memo_forgets_the_least_recently_used_texts_past_its_size() -> None:
    size = 2 * MIN_CHARS
    memo = TextMemo(max_bytes=8 * size)  # eight texts of `size` characters
    calls: list[str] = []

    def same(text: str) -> str | None:
        calls.append(text)
        return None  # weighs the text's characters alone

    texts = [ch * size for ch in "abcdefghij"]
    for text in texts:  # ten: a and b go
        remembered(memo.normalised, text, same)
    assert len(memo.normalised) == 8 and memo.normalised.weight == 8 * size
    assert texts[0] not in memo.normalised and texts[1] not in memo.normalised
    remembered(memo.normalised, texts[2], same)  # c is now the most recent
    calls.clear()
    remembered(memo.normalised, "k" * size, same)  # d, the least recent, goes
    assert calls == ["k" * size]
    assert texts[3] not in memo.normalised
    assert all(t in memo.normalised for t in [texts[2], *texts[4:], "k" * size])


def test_a_text_of_many_short_paragraphs_weighs_what_its_value_holds() -> None:
    memo = TextMemo(max_bytes=1_000_000)
    text = "\n\n".join(f"paragraph {n}" for n in range(5_000))  # ~80 KB, 5,000 paragraphs
    slot = memo.blocks.get(text, dedupe._blocks)
    assert len(slot[0]) == 5_000
    # 5,000 paragraphs weigh ~3 MB: more than an eighth of the table, so not kept.
    assert len(memo.blocks) == 0 and memo.blocks.weight == 0
    small = "\n\n".join(f"paragraph {n}" for n in range(100))
    memo.blocks.get(small, dedupe._blocks)
    assert len(memo.blocks) == 1
    assert memo.blocks.weight == len(small) + BLOCK_BYTES * 100


def test_short_texts_and_a_counter_without_a_cache_keep_nothing() -> None:
    memo = TextMemo()
    remembered(memo.normalised, "short", str.upper)
    assert len(memo.normalised) == 0
    remembered(memo.normalised, "y" * MIN_CHARS, str.upper)
    assert len(memo.normalised) == 1
    # A counter without a cache keeps nothing between requests.
    cold = TokenCounter(cache_size=0).texts
    assert remembered(cold.normalised, "x" * MIN_CHARS, str.upper) == "X" * MIN_CHARS
    assert len(cold.normalised) == 0


def test_a_resent_history_is_not_normalised_or_split_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aicp.compress import markdown, whitespace

    case = next(c for c in cases() if c.kind == REPEATED and c.protocol == "openai")
    app = TokenCounter()
    compress_sync(case.body, case.protocol, case.model, steps=STEPS, counter=app)
    seen: list[int] = []

    def spy(real: Callable[[str], T]) -> Callable[[str], T]:
        def call(text: str) -> T:
            seen.append(len(text))
            return real(text)

        return call

    monkeypatch.setattr(whitespace, "normalise", spy(whitespace.normalise))
    monkeypatch.setattr(dedupe, "blocks", spy(markdown.blocks))
    out = compress_sync(
        copy.deepcopy(case.body), case.protocol, case.model, steps=STEPS, counter=app
    )
    assert any(s.name == "dedupe" for s in out.steps_applied)
    assert [n for n in seen if n >= MIN_CHARS] == []
