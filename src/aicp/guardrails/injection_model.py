"""The injection detector's learned part: a logistic regression over the words a prompt holds.

The weights come from `train_injection` and ship as data/injection_words.json. At
run time the score is one set intersection and a sum over the few words it leaves,
so it costs microseconds; the file is read on first use, from the package, never
from the network.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

LENGTH = 10.0  # log2(1 + distinct words) is divided by this to give the length feature


@dataclass(frozen=True, slots=True)
class WordScorer:
    bias: float
    length: float  # weight of the length feature
    weights: dict[bytes, float]  # the words as `base.words` gives them
    vocabulary: frozenset[bytes] = field(init=False)  # weights' keys, for a C-speed `&`

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocabulary", frozenset(self.weights))

    def probability(self, present: frozenset[bytes]) -> float:
        z = self.bias + self.length * math.log2(1 + len(present)) / LENGTH
        z += sum(map(self.weights.__getitem__, present & self.vocabulary))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def dumps(self) -> str:
        weights = {w.decode(): c for w, c in self.weights.items()}
        body = {"bias": self.bias, "length": self.length, "weights": weights}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> WordScorer:
        body = json.loads(text)
        weights = {str(w).encode(): float(c) for w, c in body["weights"].items()}
        return cls(float(body["bias"]), float(body["length"]), weights)

    @classmethod
    def shipped(cls) -> WordScorer:
        data = resources.files("aicp.guardrails") / "data" / "injection_words.json"
        return cls.loads(data.read_text(encoding="utf-8"))
