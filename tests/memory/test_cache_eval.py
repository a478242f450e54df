from __future__ import annotations

import importlib.util
import random

import pytest

pytest.importorskip("numpy", reason="the semantic extra (numpy) is not installed")

from aicp.memory.cache_eval import pairs, runner
from aicp.memory.semantic import DEFAULT_THRESHOLD

needs_wordllama = pytest.mark.skipif(
    importlib.util.find_spec("wordllama") is None,
    reason="the semantic extra (wordllama) is not installed",
)


def test_the_pairs_are_generated_the_same_way_every_time() -> None:
    first, again = pairs.generated(), pairs.generated(random.Random(pairs.SEED))
    assert first == again
    assert len(first) > 300 and len(pairs.handwritten()) > 150


def test_both_splits_hold_paraphrases_and_near_misses_of_every_required_kind() -> None:
    everything = pairs.all_pairs()
    required = {"city", "number", "person", "negation", "unit", "function", "language"}
    for split in (pairs.DEV, pairs.TEST):
        mine = pairs.by_split(everything, split)
        assert sum(p.hit for p in mine) > 100 and sum(not p.hit for p in mine) > 80
        assert required <= {p.kind for p in mine if not p.hit}, split
        assert {"reorder", "polite", "case", "typo"} <= {p.kind for p in mine if p.hit}


def test_templated_intents_fall_in_one_split_only() -> None:
    generated = pairs.generated()
    intents = {p.cached_meaning.split("|")[0]: set[str]() for p in generated}
    for p in generated:
        intents[p.cached_meaning.split("|")[0]].add(p.split)
    assert all(len(splits) == 1 for splits in intents.values())
    assert {s for splits in intents.values() for s in splits} == {pairs.DEV, pairs.TEST}


def test_a_label_agrees_with_the_meanings_of_its_two_sides() -> None:
    for p in pairs.all_pairs():
        assert p.hit == (p.cached_meaning == p.query_meaning), p


def test_one_text_has_one_meaning_across_pairs() -> None:
    meaning: dict[str, str] = {}
    for p in pairs.all_pairs():
        for text, m in ((p.cached, p.cached_meaning), (p.query, p.query_meaning)):
            assert meaning.setdefault(text, m) == m, text


def test_precision_counts_a_hit_on_another_entry_of_the_same_meaning_as_right() -> None:
    paraphrase = pairs.Pair("a", "b", True, "reorder", pairs.DEV, "m1", "m1")
    near_miss = pairs.Pair("a", "c", False, "city", pairs.DEV, "m1", "m2")
    outcomes = (
        runner.Outcome(paraphrase, "m1", 0.95),
        runner.Outcome(near_miss, "m2", 0.97),  # served another pair's entry of its meaning
        runner.Outcome(near_miss, "m1", 0.93),  # served the wrong meaning
        runner.Outcome(paraphrase, None, None),
    )
    result = runner.Result(pairs.DEV, 0.92, True, outcomes)
    assert result.hits == 3 and result.false_hits == 1
    assert result.precision == pytest.approx(2 / 3) and result.hit_rate == 0.5
    assert not result.met


@needs_wordllama
async def test_the_eval_meets_its_targets_on_dev_and_test() -> None:
    results = await runner.evaluate()
    for split, rows in results.items():
        head = runner.default_row(rows)
        assert head.threshold == DEFAULT_THRESHOLD and head.guard
        assert head.precision >= runner.MIN_PRECISION, (split, head.false_hits)
        assert head.hit_rate >= runner.MIN_HIT_RATE, split
        unguarded = next(r for r in rows if not r.guard)
        assert unguarded.false_hits > 10  # the guard is what keeps precision up
    assert any("<- default" in line for line in runner.report(results, errors=True))


@needs_wordllama
def test_the_command_exits_zero_when_the_targets_are_met(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert runner.main(["--split", "dev"]) == 0
    out = capsys.readouterr().out
    assert "<- default" in out and "targets" in out and "met" in out
