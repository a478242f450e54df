from __future__ import annotations

import json
from importlib import resources

from aicp.guardrails.base import Finding
from aicp.guardrails.eval.benign_sets import handwritten
from aicp.guardrails.eval.runner import Row, detected
from aicp.guardrails.eval.samples import (
    DEV,
    TEST,
    Sample,
    grouped_splits,
    near_copy_groups,
    planted,
    split_of,
)


def test_planted_reports_where_the_value_landed() -> None:
    text, span = planted("Dear {name}, call {v} now", "555-1234", name="Ann")
    assert text[span[0] : span[1]] == "555-1234" and text.startswith("Dear Ann")


def test_a_positive_counts_only_when_its_kind_covers_the_planted_span() -> None:
    sample = Sample("call 555-123-4567", "t", DEV, True, "pii", "phone", (5, 17))
    assert detected(sample, [Finding("pii", "phone", 5, 17, 0.9)])
    assert not detected(sample, [Finding("pii", "phone", 5, 9, 0.9)])
    assert not detected(sample, [Finding("pii", "email", 5, 17, 0.9)])


def test_the_split_is_stable_and_uses_both_sides() -> None:
    assert {split_of(str(i)) for i in range(20)} == {DEV, TEST}
    assert split_of("same text") == split_of("same text")


def test_the_handwritten_benign_set_ships_with_the_package() -> None:
    samples = list(handwritten())
    assert len(samples) > 150 and not any(s.positive for s in samples)


def test_targets_are_checked_in_the_right_direction() -> None:
    assert Row("pii", "recall", "x", 100, 96, 0.95).met
    assert not Row("pii", "fpr", "x", 100, 2, 0.01).met
    assert Row("pii", "fpr", "x", 100, 1, None).met is None


def test_near_copies_and_families_share_a_split() -> None:
    base = " ".join(f"word{i}" for i in range(40))
    texts = [f"{base} tail{i}" for i in range(12)]
    assert len(set(grouped_splits(texts))) == 1
    families = [str(i % 2) for i in range(40)]
    distinct = [f"unrelated text number {i} about topic {i * 7}" for i in range(40)]
    groups = near_copy_groups(distinct, families)
    assert len(set(groups)) == 2 and len(set(grouped_splits(distinct))) == 2


def test_the_benign_training_set_is_apart_from_the_benign_test_set() -> None:
    data = resources.files("aicp.guardrails.eval") / "data" / "benign_train.jsonl"
    train = {json.loads(line)["text"] for line in data.read_text().splitlines() if line}
    assert len(train) > 150
    assert not train & {s.text for s in handwritten()}


def test_long_ordinary_text_is_a_negative_set_of_its_own() -> None:
    from aicp.guardrails.eval.benign_sets import generated_long
    from aicp.guardrails.injection import InjectionDetector

    long = list(generated_long(TEST, 20))
    assert len(long) == 20
    assert all(not s.positive and s.detector == "injection" for s in long)
    assert min(len(s.text) for s in long) > 800  # long, which the short sets are not
    # The detector once flagged nearly all of these; a regression shows here first.
    detector = InjectionDetector()
    flagged = [s for s in long if detector.scan(s.text)]
    assert len(flagged) <= 1, [s.text[:80] for s in flagged]
