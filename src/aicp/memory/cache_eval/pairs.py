"""The labelled pairs: generated from templates with a seeded RNG, plus hand-written ones.

A pair is a question already answered (`cached`) and a new one (`query`) that
must, or must not, be served that answer. Every text carries a *meaning*:
one question asked in different words has one meaning, so a query may also
correctly hit another pair's entry of its meaning, and hitting any entry of
another meaning is a false hit.

Generated pairs (data/templates.yaml), per intent:
- paraphrases: two sayings of the same question ("reorder"), and one saying
  with politeness added, with case and punctuation changed, or with a typo;
- near-misses: one slot value changed (a different city, number, person,
  unit, function, language ...), or a negated saying, sometimes lower-cased.
Hand-written pairs (data/handwritten.jsonl) cover what templates do not;
those found while tuning are pinned to dev (`"split": "dev"`).

The split is by intent (and by pair for hand-written ones), so the test
split holds questions no tuning on dev has seen.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

DEV, TEST = "dev", "test"
SEED = 20261201

_SLOT = re.compile(r"\{(\w+?)(\d?)\}")
POLITE_BEFORE = (
    "Could you please tell me: ",
    "Hi! ",
    "Hey, quick question: ",
    "Please help me out. ",
    "I was wondering, ",
    "Hello there, ",
)
POLITE_AFTER = (" Thanks!", " Thank you.", " Thanks in advance!", " Please.")


@dataclass(frozen=True, slots=True)
class Pair:
    cached: str
    query: str
    hit: bool  # must the query be served the cached answer?
    kind: str  # e.g. "reorder", "typo", "city", "negation"
    split: str
    cached_meaning: str
    query_meaning: str  # equal to cached_meaning exactly when `hit`


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    say: tuple[str, ...]
    negated: tuple[str, ...]

    def slots(self) -> list[tuple[str, str]]:
        """(slot, value list) in order of first appearance: {city2} draws from `city`."""
        found: dict[str, str] = {}
        for text in self.say:
            for base, digit in _SLOT.findall(text):
                found.setdefault(base + digit, base)
        return list(found.items())


def split_of(name: str) -> str:
    return DEV if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else TEST


def load_templates() -> tuple[dict[str, str], dict[str, list[str]], list[Intent]]:
    raw: Any = yaml.safe_load(_data("templates.yaml"))
    intents = [
        Intent(i["name"], tuple(i["say"]), tuple(i.get("negated", ()))) for i in raw["intents"]
    ]
    return dict(raw["kinds"]), {k: [str(v) for v in vs] for k, vs in raw["values"].items()}, intents


def generated(rng: random.Random | None = None) -> list[Pair]:
    rng = rng or random.Random(SEED)
    kinds, values, intents = load_templates()
    pairs: list[Pair] = []
    for intent in intents:
        pairs += _intent_pairs(intent, kinds, values, rng)
    return pairs


def handwritten() -> list[Pair]:
    rows = [
        json.loads(line)
        for line in _data("handwritten.jsonl").splitlines()
        if line.strip() and not line.startswith("//")
    ]
    # One text, one meaning: the two sides of a paraphrase share theirs, across rows too.
    meaning = {text: text for row in rows for text in (row["cached"], row["query"])}

    def find(text: str) -> str:
        while meaning[text] != text:
            text = meaning[text]
        return text

    for row in rows:
        if row["hit"]:
            meaning[find(row["query"])] = find(row["cached"])
    return [
        Pair(
            row["cached"],
            row["query"],
            row["hit"],
            row["kind"],
            row.get("split") or split_of(row["cached"] + row["query"]),
            "h|" + find(row["cached"]),
            "h|" + find(row["query"]),
        )
        for row in rows
    ]


def all_pairs() -> list[Pair]:
    return generated() + handwritten()


def _data(name: str) -> str:
    return (resources.files("aicp.memory.cache_eval") / "data" / name).read_text("utf-8")


def _intent_pairs(
    intent: Intent, kinds: Mapping[str, str], values: Mapping[str, list[str]], rng: random.Random
) -> Iterator[Pair]:
    split = split_of(intent.name)
    slots = intent.slots()

    def draw() -> dict[str, str]:
        chosen: dict[str, str] = {}
        for slot, base in slots:
            taken = {v for s, v in chosen.items() if s.rstrip(string.digits) == base}
            chosen[slot] = rng.choice([v for v in values[base] if v not in taken])
        return chosen

    def meaning(filled: Mapping[str, str], negated: bool = False) -> str:
        return f"{intent.name}|{sorted(filled.items())}|{'not' if negated else ''}"

    def pair(
        a: str, b: str, fa: dict[str, str], fb: dict[str, str], kind: str, neg: bool = False
    ) -> Pair:
        same = fa == fb and not neg
        return Pair(_fill(a, fa), _fill(b, fb), same, kind, split, meaning(fa), meaning(fb, neg))

    sayings = list(intent.say)
    for _ in range(2):  # the same question in other words
        if len(sayings) > 1:
            a, b = rng.sample(sayings, 2)
            filled = draw()
            yield pair(a, b, filled, filled, "reorder")
    for kind, change in (("polite", _polite), ("case", _case), ("typo", _typo)):
        saying, filled = rng.choice(sayings), draw()
        yield Pair(
            _fill(saying, filled),
            change(_fill(saying, filled), rng),
            True,
            kind,
            split,
            meaning(filled),
            meaning(filled),
        )
    for slot, base in slots:  # one value changed
        if base not in kinds:
            continue
        for _ in range(2):
            a, b = rng.choice(sayings), rng.choice(sayings)
            fa = draw()
            others = [v for v in values[base] if v not in fa.values()]
            fb = {**fa, slot: rng.choice(others)}
            found = pair(a, b, fa, fb, kinds[base])
            lower = rng.random()
            if lower < 0.4:  # a client that types in lower case, now or before
                cached = _case(found.cached, rng) if lower < 0.15 else found.cached
                found = Pair(
                    **{**_fields(found), "cached": cached, "query": _case(found.query, rng)}
                )
            yield found
    for plain, negated in zip(intent.say, intent.negated, strict=False):
        filled = draw()
        yield pair(plain, negated, filled, filled, "negation", neg=True)


def _fields(p: Pair) -> dict[str, Any]:
    return {name: getattr(p, name) for name in Pair.__slots__}


def _fill(saying: str, filled: Mapping[str, str]) -> str:
    return _SLOT.sub(lambda m: filled[m.group(1) + m.group(2)], saying)


def _polite(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        before = rng.choice(POLITE_BEFORE)
        return before + (text[0].lower() + text[1:] if before[-2] not in ".!" else text)
    return text + rng.choice(POLITE_AFTER)


def _case(text: str, rng: random.Random) -> str:
    text = text.lower()
    if rng.random() < 0.5:
        text = text.rstrip("?.!")
    return text.replace("'", "") if rng.random() < 0.5 else text


def _typo(text: str, rng: random.Random) -> str:
    """Two neighbouring letters swapped in one longer lower-case word."""
    words = text.split(" ")
    choices = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w.islower()]
    if not choices:
        return text
    i = rng.choice(choices)
    word = words[i]
    spots = [j for j in range(1, len(word) - 2) if word[j] != word[j + 1]]
    if not spots:
        return text
    j = rng.choice(spots)
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def by_split(pairs: Sequence[Pair], split: str) -> list[Pair]:
    return [p for p in pairs if p.split == split]
