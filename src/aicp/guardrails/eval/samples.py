"""A labelled sample, and the split that keeps tuning away from the reported figures."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

DEV, TEST = "dev", "test"


@dataclass(frozen=True, slots=True)
class Sample:
    """One text with what a detector should say about it.

    A positive names the detector and kind that must report it (and the planted span
    the finding must overlap, when there is one); a negative names the detector it is
    a negative for, or None for every detector.
    """

    text: str
    source: str
    split: str
    positive: bool
    detector: str | None = None
    kind: str | None = None
    span: tuple[int, int] | None = None


def split_of(text: str) -> str:
    """Half of a fixed corpus by content hash: stable, and blind to what is in the text."""
    return DEV if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else TEST


def planted(template: str, value: str, **fill: str) -> tuple[str, tuple[int, int]]:
    """The template with `{v}` replaced by value, and where value ended up."""
    head, _, tail = template.partition("{v}")
    head, tail = head.format(**fill), tail.format(**fill)
    return head + value + tail, (len(head), len(head) + len(value))


def _shingles(text: str, size: int = 5) -> frozenset[str]:
    tokens = re.findall(r"\w+", text.lower())
    return frozenset(" ".join(tokens[i : i + size]) for i in range(max(1, len(tokens) - size + 1)))


def near_copy_groups(
    texts: Sequence[str], families: Sequence[str] | None = None, similar: float = 0.4
) -> list[int]:
    """A group number for each text: near-copies and members of one family share one.

    Jailbreak corpora hold many edits of one prompt (a DAN with another name, a line
    added in front). Texts whose word 5-gram sets overlap by `similar` (Jaccard), or
    that share a family name, are one group.
    """
    sets = [_shingles(t) for t in texts]
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holders: dict[str, list[int]] = {}
    for i, shingles in enumerate(sets):
        for shingle in shingles:
            holders.setdefault(shingle, []).append(i)
    shared: Counter[tuple[int, int]] = Counter()
    for members in holders.values():
        shared.update(itertools.combinations(members, 2))
    for (a, b), n in shared.items():
        if n >= similar * (len(sets[a]) + len(sets[b]) - n):
            parent[root(a)] = root(b)
    first_of_family: dict[str, int] = {}
    for i, family in enumerate(families or ()):
        if family:
            parent[root(i)] = root(first_of_family.setdefault(family, i))
    return [root(i) for i in range(len(texts))]


def grouped_splits(texts: Sequence[str], families: Sequence[str] | None = None) -> list[str]:
    """The split of each text, shared by its group (`near_copy_groups`).

    Hashed one by one, the edits of one jailbreak land on both sides, and a detector
    tuned on dev meets copies of its dev prompts in test. A group takes the split of
    its first member in sorted order.
    """
    groups = near_copy_groups(texts, families)
    members: dict[int, list[str]] = {}
    for group, text in zip(groups, texts, strict=True):
        members.setdefault(group, []).append(text)
    split = {group: split_of(min(texts)) for group, texts in members.items()}
    return [split[group] for group in groups]
